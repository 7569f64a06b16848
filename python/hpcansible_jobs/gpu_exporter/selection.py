"""Which GPUs are the job's: the ones its processes see, as SLURM and the recipe set them.

Sources, first set wins:
- an explicit list (the exporter's --gpus);
- CUDA_VISIBLE_DEVICES, what the service's CUDA programs see: NVML indices or UUIDs (a
  unique prefix such as GPU-8932f937 is enough, as for CUDA). SLURM sets it for a GPU job,
  a recipe may set it itself;
- SLURM_STEP_GPUS / SLURM_JOB_GPUS: SLURM's GPU indices on the node, which name the device
  files /dev/nvidia<N>, so they are matched against NVML's minor number. With
  ConstrainDevices NVML lists only the job's GPUs and renumbers them from 0, but the minor
  numbers stay;
- none of them: every GPU NVML lists (outside SLURM, for instance on a workstation).

Parsing follows CUDA: entries are comma-separated, and the list ends at the first entry that
is not an index or a UUID (SLURM writes "NoDevFiles" for a GRES without device files).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

INDEX = re.compile(r"^\d+$")
UUID_PREFIXES = ("GPU-", "MIG-")
SLURM_SOURCES = ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS")


@dataclass(frozen=True)
class Device:
    """What selection needs to know of one GPU that NVML lists."""

    index: int
    minor: int | None
    uuid: str


@dataclass(frozen=True)
class Selection:
    """The job's GPU list and where it came from; entries None: every GPU."""

    source: str
    raw: str
    entries: tuple[str, ...] | None

    def describe(self) -> str:
        return "every GPU NVML lists" if self.entries is None else f"{self.source}={self.raw!r}"


def parse_list(text: str) -> tuple[str, ...]:
    entries = []
    for item in text.split(","):
        entry = item.strip()
        if not (INDEX.match(entry) or entry.startswith(UUID_PREFIXES)):
            break
        entries.append(entry)
    return tuple(entries)


def job_selection(environ: Mapping[str, str], explicit: str | None = None) -> Selection:
    if explicit is not None:
        return Selection("--gpus", explicit, parse_list(explicit))
    for source in ("CUDA_VISIBLE_DEVICES", *SLURM_SOURCES):
        if source in environ:
            return Selection(source, environ[source], parse_list(environ[source]))
    return Selection("", "", None)


def matches(device: Device, entry: str, by_minor: bool) -> bool:
    if entry.startswith(UUID_PREFIXES):
        return device.uuid.startswith(entry)
    number = int(entry)
    if by_minor and device.minor is not None:
        return device.minor == number
    return device.index == number


def select(devices: Sequence[Device], selection: Selection) -> tuple[list[Device], list[str]]:
    """The selected devices, in the selection's order, and the entries that matched none."""
    if selection.entries is None:
        return list(devices), []
    by_minor = selection.source in SLURM_SOURCES
    chosen: list[Device] = []
    unmatched: list[str] = []
    for entry in selection.entries:
        found = [device for device in devices if matches(device, entry, by_minor)]
        if not found:
            unmatched.append(entry)
        chosen.extend(device for device in found[:1] if device not in chosen)
    return chosen, unmatched
