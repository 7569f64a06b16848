# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Filters over Prometheus's API answers (the rules live in module_utils/prometheus_api.py);
documented in scraped_since.yml, duration_seconds.yml and scrape_after_load_timeout_s.yml."""

from __future__ import annotations

from ansible_collections.hpcansible.hpc.plugins.module_utils.prometheus_api import (
    duration_seconds,
    scrape_after_load_timeout_s,
    scraped_since,
)


class FilterModule:
    def filters(self) -> dict:
        return {
            "scraped_since": scraped_since,
            "duration_seconds": duration_seconds,
            "scrape_after_load_timeout_s": scrape_after_load_timeout_s,
        }
