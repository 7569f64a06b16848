"""Latency distributions from the client's HdrHistograms: aggregate.json (exact, mergeable)
or, without it, hdr/<metric>.hgrm (the percentile distribution, counts between its rows)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpcansible.errors import UserError
from hpcansible.report.session import read_json

DISTRIBUTION_METRICS = ("ttft", "tpot", "itl", "e2e")


@dataclass
class Distribution:
    metric: str
    values_ms: list[float]  # recorded values (bucket values), ascending
    counts: list[int]
    source: str

    @property
    def total(self) -> int:
        return sum(self.counts)


def recorded(hdr: Any) -> tuple[list[float], list[int]]:
    """(value in ms, count) of every non-empty bucket. hdrh's own recorded-values iterator
    walks every bucket in Python (seconds at 4 significant digits); numpy finds the few
    that hold something."""
    import numpy

    counts = numpy.ctypeslib.as_array(hdr.counts)  # a view, no copy
    indices = numpy.flatnonzero(counts)
    values = [
        hdr.get_highest_equivalent_value(hdr.get_value_from_index(int(i))) / 1000 for i in indices
    ]
    return values, [int(c) for c in counts[indices]]


def from_aggregate(directory: Path) -> dict[str, Distribution]:
    try:
        data = read_json(directory / "aggregate.json")
    except UserError:
        return {}
    from hpcansible_jobs.bench.histogram import LatencyHistogram

    found = {}
    for metric in DISTRIBUTION_METRICS:
        raw = (data.get("histograms") or {}).get(metric)
        if not isinstance(raw, dict) or not raw.get("count"):
            continue
        try:
            histogram = LatencyHistogram.from_json(raw)
        except (KeyError, TypeError, ValueError):
            continue
        values, counts = recorded(histogram.hdr)
        found[metric] = Distribution(metric, values, counts, "aggregate.json")
    return found


def parse_hgrm(text: str) -> tuple[list[float], list[int]]:
    """Rows `Value Percentile TotalCount ...` -> (value, count since the previous row)."""
    values, counts, seen = [], [], 0
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0].startswith(("#", "Value")):
            continue
        try:
            value, total = float(fields[0]), int(float(fields[2]))
        except ValueError:
            continue
        if total > seen:
            values.append(value)
            counts.append(total - seen)
            seen = total
    return values, counts


def from_hgrm(directory: Path) -> dict[str, Distribution]:
    found = {}
    for metric in DISTRIBUTION_METRICS:
        path = directory / "hdr" / f"{metric}.hgrm"
        try:
            values, counts = parse_hgrm(path.read_text(encoding="utf-8"))
        except OSError:
            continue
        if counts:
            found[metric] = Distribution(metric, values, counts, f"hdr/{metric}.hgrm")
    return found


def load_distributions(directory: Path) -> dict[str, Distribution]:
    return from_aggregate(directory) or from_hgrm(directory)
