"""Latency histograms: HdrHistogram in microseconds, plus exact count, sum, min and max.

4 significant digits: values up to 32 ms are exact to 1 us, larger ones within 0.05 %.
Means and maxima come from the exact sums, percentiles from the histogram (never above
the exact max). Histograms from several processes or jobs add up exactly.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from hdrh.histogram import HdrHistogram

HDR_LOWEST_US = 1
HDR_HIGHEST_US = 3_600_000_000  # one hour
HDR_DIGITS = 4
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}


class LatencyHistogram:
    """An HdrHistogram in microseconds plus exact count, sum, min and max in nanoseconds."""

    def __init__(self) -> None:
        self.hdr = HdrHistogram(HDR_LOWEST_US, HDR_HIGHEST_US, HDR_DIGITS)
        self.count = 0
        self.sum_ns = 0
        self.min_ns: int | None = None
        self.max_ns = 0

    def record_many_ns(self, values_ns: Sequence[int]) -> None:
        """Record nanosecond values (negatives clamp to 0), grouping equal microseconds."""
        if not values_ns:
            return
        values = values_ns
        low = min(values)
        if low < 0:  # rare: a clock step; copying every value would double the memory
            values = [v if v > 0 else 0 for v in values]
            low = 0
        self.count += len(values)
        self.sum_ns += sum(values)
        high = max(values)
        self.min_ns = low if self.min_ns is None else min(self.min_ns, low)
        self.max_ns = max(self.max_ns, high)
        for micros, repeat in Counter((v + 500) // 1000 for v in values).items():
            self.hdr.record_value(min(micros, HDR_HIGHEST_US), repeat)

    def merge(self, other: LatencyHistogram) -> None:
        if other.count == 0:
            return
        self.hdr.add(other.hdr)
        self.count += other.count
        self.sum_ns += other.sum_ns
        assert other.min_ns is not None
        self.min_ns = other.min_ns if self.min_ns is None else min(self.min_ns, other.min_ns)
        self.max_ns = max(self.max_ns, other.max_ns)

    def _cumulative_counts(self) -> list[int]:
        # hdrh walks its counts array in Python per percentile (slow with 4 digits);
        # accumulate + bisect do the same walk at C speed.
        counts = self.hdr.counts
        last = min(len(counts), self.hdr.get_counts_array_index(self.hdr.get_max_value()) + 1)
        return list(accumulate(counts[:last]))

    def _micros_at(self, cumulative: list[int], percentile: float) -> int:
        target = self.hdr.get_target_count_at_percentile(percentile)
        index = min(bisect_left(cumulative, target), len(cumulative) - 1)
        return self.hdr.get_highest_equivalent_value(self.hdr.get_value_from_index(index))

    def percentile_ms(self, percentile: float) -> float | None:
        if self.count == 0:
            return None
        micros = self._micros_at(self._cumulative_counts(), percentile)
        # HdrHistogram reports a bucket's upper edge; never report more than the true max
        return round(min(micros * 1000, self.max_ns) / 1e6, 3)

    def stats_ms(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"count": self.count}
        stats["mean"] = round(self.sum_ns / self.count / 1e6, 3) if self.count else None
        cumulative = self._cumulative_counts() if self.count else []
        for name, percentile in PERCENTILES.items():
            micros = self._micros_at(cumulative, percentile) if self.count else None
            stats[name] = (
                None if micros is None else round(min(micros * 1000, self.max_ns) / 1e6, 3)
            )
        stats["max"] = round(self.max_ns / 1e6, 3) if self.count else None
        return stats

    def percentile_distribution(self, ticks_per_half_distance: int = 5) -> str:
        """HdrHistogram's .hgrm text (values in ms), as HistogramLogAnalyzer reads it:
        percentile steps halve towards 100 % (ticks_per_half_distance per halving)."""
        lines = [
            f"{'Value':>12} {'Percentile':>14} {'TotalCount':>10} {'1/(1-Percentile)':>14}",
            "",
        ]
        if not self.count:
            return "\n".join(lines) + "\n"
        cumulative = self._cumulative_counts()
        total = cumulative[-1]
        level = 0.0
        while True:
            target = self.hdr.get_target_count_at_percentile(level)
            index = min(bisect_left(cumulative, target), len(cumulative) - 1)
            micros = self.hdr.get_highest_equivalent_value(self.hdr.get_value_from_index(index))
            reached = cumulative[index]
            fraction = reached / total if level >= 100.0 or reached >= total else level / 100
            value = f"{min(micros * 1000, self.max_ns) / 1e6:12.3f}"
            if reached >= total:
                lines.append(f"{value} {1.0:2.12f} {reached:10d}")
                break
            lines.append(f"{value} {fraction:2.12f} {reached:10d} {1 / (1 - fraction):14.2f}")
            halvings = int(math.log2(100.0 / (100.0 - level))) + 1
            level += 100.0 / (ticks_per_half_distance * 2**halvings)
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "sum_ns": self.sum_ns,
            "min_ns": self.min_ns,
            "max_ns": self.max_ns,
            "hdr": self.hdr.encode().decode("ascii") if self.count else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LatencyHistogram:
        histogram = cls()
        if data.get("count"):
            histogram.hdr = HdrHistogram.decode(data["hdr"].encode("ascii"))
            histogram.count = int(data["count"])
            histogram.sum_ns = int(data["sum_ns"])
            histogram.min_ns = data["min_ns"]
            histogram.max_ns = int(data["max_ns"])
        return histogram


# Per-second series: counters that add up and maxima that take the max when merging.
