# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Whether a job's sbatch options ask SLURM for GPUs (the rule lives in module_utils/gpu.py)."""

from __future__ import annotations

from ansible_collections.hpcansible.hpc.plugins.module_utils.gpu import asks_for_gpus, gpu_count

DOCUMENTATION = r"""
---
name: asks_for_gpus
short_description: Whether a job's sbatch options ask SLURM for GPUs
description:
  - True when the options ask for at least one GPU through C(gres) (C(gpu), C(gpu:2),
    C(gpu:a100:2), also inside a list such as C(gpu:1,shard:1)), C(gpus) (C([type:]count)), or
    C(extra_args) (C(--gres=...), C(--gpus), C(-G), C(--gpus-per-node), C(--gpus-per-task),
    C(--gpus-per-socket)).
  - A partition named C(gpu) alone asks for nothing; SLURM gives its jobs no GPU unless they ask.
  - The same rule serves the recipes (Python) and the roles (Jinja), from
    C(plugins/module_utils/gpu.py).
version_added: 0.1.0
author: hpcansible contributors
positional: _input
options:
  _input:
    description: sbatch options as the roles pass them (C(partition), C(gres), C(gpus), C(extra_args), ...).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Does the service job get a GPU?
  ansible.builtin.debug:
    msg: "{{ {'partition': 'gpu', 'gres': 'gpu:1'} | hpcansible.hpc.asks_for_gpus }}"
  # true
"""

RETURN = r"""
_value:
  description: True when at least one GPU is asked for.
  type: bool
"""


class FilterModule:
    def filters(self) -> dict:
        return {"asks_for_gpus": asks_for_gpus, "gpu_count": gpu_count}
