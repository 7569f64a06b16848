"""Schedules: arrival processes, ramp, bounds, seeding and the split across workers."""

from __future__ import annotations

import statistics
from itertools import pairwise

import pytest
from hpcansible_jobs.bench.schedule import (
    NS_PER_S,
    arrival_offsets_ns,
    share,
    split_count,
    stream_start_offsets_ns,
)


def gaps_s(offsets) -> list[float]:
    return [(b - a) / NS_PER_S for a, b in pairwise(offsets)]


def test_constant_arrivals_are_evenly_spaced() -> None:
    offsets = arrival_offsets_ns(100.0, "constant", count=5)
    assert list(offsets) == [0, 10_000_000, 20_000_000, 30_000_000, 40_000_000]


def test_poisson_has_the_rate_and_unit_coefficient_of_variation() -> None:
    offsets = arrival_offsets_ns(1000.0, "poisson", count=20000, seed=1)
    gaps = gaps_s(offsets)
    mean = statistics.fmean(gaps)
    assert mean == pytest.approx(1e-3, rel=0.03)
    assert statistics.pstdev(gaps) / mean == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize("burstiness", [0.25, 4.0])
def test_gamma_burstiness_sets_the_coefficient_of_variation(burstiness: float) -> None:
    offsets = arrival_offsets_ns(500.0, "gamma", burstiness, count=20000, seed=2)
    gaps = gaps_s(offsets)
    mean = statistics.fmean(gaps)
    assert mean == pytest.approx(1 / 500, rel=0.05)
    assert statistics.pstdev(gaps) / mean == pytest.approx(burstiness**-0.5, rel=0.08)


def test_duration_bounds_the_schedule() -> None:
    offsets = arrival_offsets_ns(200.0, "constant", duration_s=1.0)
    assert len(offsets) == 200
    assert offsets[-1] < NS_PER_S
    both = arrival_offsets_ns(200.0, "constant", count=50, duration_s=1.0)
    assert len(both) == 50


def test_schedules_are_seeded() -> None:
    first = arrival_offsets_ns(50.0, "poisson", count=100, seed=7)
    assert first == arrival_offsets_ns(50.0, "poisson", count=100, seed=7)
    assert first != arrival_offsets_ns(50.0, "poisson", count=100, seed=8)


def test_linear_ramp_reaches_the_rate() -> None:
    rate, ramp = 100.0, 2.0
    offsets = arrival_offsets_ns(rate, "constant", duration_s=4.0, ramp_s=ramp)
    during = [o for o in offsets if o < ramp * NS_PER_S]
    after = [o for o in offsets if o >= ramp * NS_PER_S]
    # the ramp's area is rate * ramp / 2 requests, then the full rate
    assert len(during) == pytest.approx(rate * ramp / 2, abs=1)
    assert len(after) == pytest.approx(rate * 2.0, abs=1)
    assert gaps_s(after)[5] == pytest.approx(1 / rate)
    assert gaps_s(during)[0] > gaps_s(during)[-1]  # sparse first, denser later


def test_workers_share_one_global_schedule() -> None:
    offsets = arrival_offsets_ns(100.0, "poisson", count=10, seed=3)
    parts = [share(offsets, 3, w) for w in range(3)]
    assert sorted(o for part in parts for o in part) == list(offsets)
    assert [len(p) for p in parts] == [4, 3, 3]
    assert [split_count(10, 3, w) for w in range(3)] == [4, 3, 3]


def test_stream_starts_ramp_linearly() -> None:
    assert stream_start_offsets_ns(4, 2.0) == [0, 500_000_000, 1_000_000_000, 1_500_000_000]
    assert stream_start_offsets_ns(3, 0.0) == [0, 0, 0]


def test_unbounded_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="count or a duration"):
        arrival_offsets_ns(10.0)
