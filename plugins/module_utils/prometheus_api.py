# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Reading Prometheus's own API answers: one definition for the playbooks and the CLI."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any


def parse_time(value: str) -> datetime | None:
    """An RFC 3339 time as Prometheus and Python write it (nanoseconds are cut to micro)."""
    if not value or value.startswith("0001-01-01"):
        return None  # Prometheus's zero time: never scraped
    text = value.strip().replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def scraped_since(targets: Iterable[Mapping[str, Any]], since: str) -> bool:
    """Whether every active target (of /api/v1/targets) was scraped at or after `since`."""
    moment = parse_time(since)
    targets = list(targets)
    if moment is None or not targets:
        return False
    for target in targets:
        last = parse_time(str(target.get("lastScrape", "")))
        if last is None or last < moment:
            return False
    return True


DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


def duration_seconds(value: str | float) -> float:
    """Seconds in a Prometheus duration (`5s`, `1m30s`, `250ms`); plain numbers are seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    parts = DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"not a Prometheus duration: {value!r}")
    return sum(int(number) * DURATION_UNITS[unit] for number, unit in parts)


def scrape_after_load_timeout_s(scrape_interval: str | float) -> float:
    """How long to wait for every target's first scrape after the load's end (stop, a live
    report): two scrape intervals, for a scrape in flight and the next, and 5 s of slack."""
    return 2 * duration_seconds(scrape_interval) + 5
