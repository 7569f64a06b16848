# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Filters over Prometheus's API answers (the rules live in module_utils/prometheus_api.py);
documented in scraped_since.yml and duration_seconds.yml."""

from __future__ import annotations

from ansible_collections.hpcansible.hpc.plugins.module_utils.prometheus_api import (
    duration_seconds,
    scraped_since,
)


class FilterModule:
    def filters(self) -> dict:
        return {"scraped_since": scraped_since, "duration_seconds": duration_seconds}
