# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""How the roles' fixed-interval waits poll (the rule lives in module_utils/slurm.py, beside
the SLURM waits' next_interval); documented in poll_retries.yml."""

from __future__ import annotations

from ansible_collections.hpcansible.hpc.plugins.module_utils.slurm import poll_retries


class FilterModule:
    def filters(self) -> dict:
        return {"poll_retries": poll_retries}
