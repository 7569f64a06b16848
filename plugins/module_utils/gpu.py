# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Does a job's sbatch options ask SLURM for GPUs? The one rule, for Python and Jinja alike.

SLURM gives a job GPUs only when it asks for them: `--gres=gpu[:type][:count]` (in a list such
as `gpu:a100:2,shard:1`), `--gpus=[type:]count` (also `-G`), or `--gpus-per-node`,
`--gpus-per-task`, `--gpus-per-socket`. A partition named `gpu` alone asks for nothing: its
jobs run on GPU nodes but see no GPU. The options come from a recipe's `resources` (`gres`,
`gpus`) or its `extra_args`. Used by the recipes (the GPU exporter's port), the
hpcansible.hpc.asks_for_gpus filter (the GPU sidecar, Apptainer's --nv) and its tests.
Nothing here imports Ansible.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# dcgm-exporter's default port, which the project's own NVML exporter keeps.
GPU_EXPORTER_PORT = 9400
COUNT = re.compile(r"^(\d+)[kKmMgG]?$")
GPUS = re.compile(r"^(?:[^:,]+:)?(\d+)$")
GPU_OPTIONS = ("--gpus", "-G", "--gpus-per-node", "--gpus-per-task", "--gpus-per-socket")


def gres_gpus(gres: str) -> int:
    """GPUs asked for by a --gres value (gpu, gpu:2, gpu:a100, gpu:a100:2); no count is one."""
    total = 0
    for item in str(gres).split(","):
        name, *rest = item.strip().split(":")
        if name.removeprefix("gres/") != "gpu":
            continue
        count = COUNT.match(rest[-1]) if rest else None
        # A count with a k/m/g suffix (SLURM multiplies it) is rare: it counts as asked for.
        total += int(count.group(1)) if count else 1
    return total


def gpus_value(value: Any) -> int:
    """GPUs asked for by a --gpus (or --gpus-per-*) value: [type:]count, a list of them."""
    total = 0
    for item in str(value).split(","):
        match = GPUS.match(item.strip())
        if match:
            total += int(match.group(1))
    return total


def _extra_options(extra_args: Iterable[Any]) -> Iterable[tuple[str, str]]:
    """(--option, value) pairs of sbatch arguments given as --opt=value, --opt value or -G2."""
    args = [str(arg) for arg in extra_args]
    for position, arg in enumerate(args):
        following = args[position + 1] if position + 1 < len(args) else ""
        if arg.startswith("--") and "=" in arg:
            yield tuple(arg.split("=", 1))  # type: ignore[misc]
        elif arg in ("--gres", *GPU_OPTIONS):
            yield arg, following
        elif arg.startswith("-G") and len(arg) > 2:
            yield "-G", arg[2:]


def gpu_count(resources: Mapping[str, Any] | None) -> int:
    """How many GPUs the sbatch options ask for (per the option that says so); 0: none."""
    resources = resources or {}
    total = gres_gpus(resources.get("gres") or "") + gpus_value(resources.get("gpus") or "")
    for option, value in _extra_options(resources.get("extra_args") or []):
        if option == "--gres":
            total += gres_gpus(value)
        elif option in GPU_OPTIONS:
            total += gpus_value(value)
    return total


def asks_for_gpus(resources: Mapping[str, Any] | None) -> bool:
    return gpu_count(resources) > 0
