"""Sweeps: one session, one measured step per point, and what the points say together.

Any sweep axis (config.SWEEP_AXES: concurrency or rate, input_tokens, output_tokens) may
hold a list. `sweep` says how the lists combine:

- `product` (default): every combination, the load axis outermost, then input_tokens,
  then output_tokens (the seed's parametric order);
- `zip`: the lists side by side (point k takes the k-th value of each; they must have
  one length, a single value applies to every point);
- an axis name (`sweep: concurrency`): only that axis varies; every other list gives its
  first value (a warning names the values left out).

Each point runs as its own step with its own warm-up into OUTPUT/<label>/; its label
(`concurrency-4_output_tokens-64`) names only the axes that vary, and is the live
metrics' `step` label. The top-level summary.json holds the plan, every point's summary,
and per series of points (the points that share every value but the load) the knee and
the highest load meeting the SLO; the top-level `knee` and `max_load_meeting_slo` are
the lowest of them over the series (what holds whatever the other axes are).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from hpcansible_jobs.bench.config import BenchConfig
from hpcansible_jobs.bench.summary import DEFINITIONS, warning

SINGLE_STEP = "run"
# The knee: the last point before adding load stops paying. Between two neighbouring
# points of a series, `gain` = relative throughput increase / relative load increase
# (1.0 scales linearly). The knee is the lower point of the first pair whose gain is
# below KNEE_MIN_GAIN, or whose p99 latency grows more than KNEE_P99_FACTOR times.
KNEE_MIN_GAIN = 0.5
KNEE_P99_FACTOR = 2.0
KNEE_LATENCY = "e2e_intended"
KNEE_RULE = (
    f"the last point before the first step up in load where throughput (succeeded "
    f"requests/s) grows by less than {KNEE_MIN_GAIN:.0%} of the relative load added, or "
    f"{KNEE_LATENCY} p99 grows more than {KNEE_P99_FACTOR:g}x; null when no step does"
)
MAX_LOAD_RULE = (
    "the highest load whose goodput attainment (requests meeting every SLO / measured "
    "requests) is at least slo_attainment; null without an SLO or when no point meets it"
)
SWEEP_DEFINITIONS = {
    **DEFINITIONS,
    "points": "one measured step per point, each with its own warm-up, outputs in "
    "OUTPUT/<label>/; the label names the axes that vary (concurrency-4_output_tokens-64) "
    "and is the live metrics' step label",
    "series": "the points that share every value but the load (concurrency or rate)",
    "knee": KNEE_RULE + "; over several series, the lowest load of their knees",
    "max_load_meeting_slo": MAX_LOAD_RULE + "; over several series, the lowest of theirs "
    "(null when one series has none)",
    "window": "first point's window start to the last point's window end (UTC)",
}


@dataclass(frozen=True)
class SweepPoint:
    label: str
    values: dict[str, float]  # every swept axis's value here (the load axis always)
    config: BenchConfig


@dataclass(frozen=True)
class SweepPlan:
    mode: str
    load_axis: str
    axes: dict[str, list[float]]  # the axes that vary, with their values
    fixed: dict[str, float]  # the axes with one value
    unused: dict[str, list[float]] = field(default_factory=dict)  # `sweep: <axis>` drops
    points: list[SweepPoint] = field(default_factory=list)

    @property
    def is_sweep(self) -> bool:
        return bool(self.axes)


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


def point_label(values: dict[str, float], varying: Sequence[str]) -> str:
    return "_".join(f"{axis}-{values[axis]:g}" for axis in varying) or SINGLE_STEP


def plan_sweep(config: BenchConfig) -> SweepPlan:
    """The points to run, in order (one point, labelled `run`, without a sweep)."""
    given = {axis: list(values) for axis, values in config.axis_values().items()}
    load_axis = config.load_axis
    unused: dict[str, list[float]] = {}
    if config.sweep in given:  # one axis varies; the others keep their first value
        for axis, values in given.items():
            if axis != config.sweep and len(values) > 1:
                unused[axis] = values[1:]
                given[axis] = values[:1]
    varying = [axis for axis, values in given.items() if len(values) > 1]
    if config.sweep == "zip" and varying:
        count = len(given[varying[0]])
        combos = [
            tuple(values[k] if len(values) > 1 else values[0] for values in given.values())
            for k in range(count)
        ]
    else:
        combos = list(itertools.product(*given.values()))
    points = []
    for combo in combos:
        values = {axis: _number(v) for axis, v in zip(given, combo, strict=True)}
        label = point_label(values, varying)
        points.append(SweepPoint(label, values, config.with_values(values, label)))
    return SweepPlan(
        mode=config.sweep,
        load_axis=load_axis,
        axes={axis: [_number(v) for v in given[axis]] for axis in varying},
        fixed={axis: _number(v[0]) for axis, v in given.items() if axis not in varying},
        unused={axis: [_number(v) for v in values] for axis, values in unused.items()},
        points=points,
    )


# --- what the points say together -----------------------------------------------------


def _throughput(summary: dict[str, Any]) -> float:
    return float(summary["throughput"]["requests_per_s"] or 0.0)


def _p99(summary: dict[str, Any]) -> float | None:
    return summary["latency_ms"][KNEE_LATENCY]["p99"]


def _attainment(summary: dict[str, Any]) -> float | None:
    goodput = summary.get("goodput")
    return None if goodput is None else goodput["attainment"]


def _describe(point: SweepPoint, load_axis: str, **extra: Any) -> dict[str, Any]:
    return {"label": point.label, "load": point.values[load_axis], "values": point.values, **extra}


def find_knee(
    series: Sequence[tuple[SweepPoint, dict[str, Any]]], load_axis: str
) -> dict[str, Any] | None:
    """KNEE_RULE over one series (points that differ only in load), or None."""
    ordered = sorted(series, key=lambda item: item[0].values[load_axis])
    for (low, low_summary), (high, high_summary) in pairwise(ordered):
        low_load, high_load = low.values[load_axis], high.values[load_axis]
        if high_load <= low_load:
            continue
        load_step = high_load / low_load - 1
        low_t, high_t = _throughput(low_summary), _throughput(high_summary)
        if low_t > 0:
            gained = high_t / low_t - 1
            if gained / load_step < KNEE_MIN_GAIN:
                reason = (
                    f"throughput {gained:+.0%} for {load_step:+.0%} {load_axis} "
                    f"({low_load:g} to {high_load:g}): less than {KNEE_MIN_GAIN:.0%} of "
                    "the load added"
                )
                return _describe(low, load_axis, reason=reason)
        low_p99, high_p99 = _p99(low_summary), _p99(high_summary)
        if low_p99 and high_p99 and high_p99 > KNEE_P99_FACTOR * low_p99:
            reason = (
                f"{KNEE_LATENCY} p99 x{high_p99 / low_p99:.1f} ({low_p99:g} to "
                f"{high_p99:g} ms) from {load_axis} {low_load:g} to {high_load:g}: more "
                f"than x{KNEE_P99_FACTOR:g}"
            )
            return _describe(low, load_axis, reason=reason)
    return None


def find_max_load_meeting_slo(
    series: Sequence[tuple[SweepPoint, dict[str, Any]]], load_axis: str, slo_attainment: float
) -> dict[str, Any] | None:
    """MAX_LOAD_RULE over one series, or None."""
    meeting = [
        (point, _attainment(summary))
        for point, summary in series
        if (_attainment(summary) or 0.0) >= slo_attainment and _attainment(summary) is not None
    ]
    if not meeting:
        return None
    point, attainment = max(meeting, key=lambda item: item[0].values[load_axis])
    return _describe(point, load_axis, attainment=attainment)


def _lowest(found: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The lowest load over the series; None when any series has none (it holds for
    no load there) or there are no series."""
    if not found or any(item is None for item in found):
        return None
    return min(found, key=lambda item: item["load"])  # type: ignore[arg-type, return-value]


def analyze(
    plan: SweepPlan, done: Sequence[tuple[SweepPoint, dict[str, Any]]], slo_attainment: float
) -> dict[str, Any]:
    """`series`, `knee` and `max_load_meeting_slo` of the top-level summary."""
    others = [axis for axis in plan.axes if axis != plan.load_axis]
    groups: dict[tuple, list[tuple[SweepPoint, dict[str, Any]]]] = {}
    for point, summary in done:
        key = tuple(point.values[axis] for axis in others)
        groups.setdefault(key, []).append((point, summary))
    series = []
    for key, members in groups.items():
        series.append(
            {
                "fixed": dict(zip(others, key, strict=True)),
                "labels": [point.label for point, _ in members],
                "knee": find_knee(members, plan.load_axis),
                "max_load_meeting_slo": find_max_load_meeting_slo(
                    members, plan.load_axis, slo_attainment
                ),
            }
        )
    knees = [s["knee"] for s in series if s["knee"] is not None]
    return {
        "series": series,
        # the knee where it comes first; a series without one has not reached it
        "knee": min(knees, key=lambda k: k["load"]) if knees else None,
        "max_load_meeting_slo": _lowest([s["max_load_meeting_slo"] for s in series]),
    }


def sweep_summary(
    plan: SweepPlan,
    done: Sequence[tuple[SweepPoint, dict[str, Any]]],
    extra: dict[str, Any],
    gate: dict[str, Any] | None,
    slo: dict[str, float],
    slo_attainment: float,
) -> dict[str, Any]:
    """The top-level summary.json of a sweep."""
    summaries = [summary for _, summary in done]
    windows = [s["window"] for s in summaries if s.get("window")]
    found = analyze(plan, done, slo_attainment)
    warnings = [
        warning(w["code"], f"{point.label}: {w['message']}")
        for point, summary in done
        for w in summary["warnings"]
    ]
    for axis, values in plan.unused.items():
        warnings.append(
            warning(
                "sweep_values_unused",
                f"{axis}: {', '.join(f'{v:g}' for v in values)} not run (sweep: {plan.mode} "
                f"keeps the first value, {plan.fixed[axis]:g})",
            )
        )
    if len(done) < len(plan.points):
        warnings.append(
            warning("sweep_incomplete", f"{len(done)} of {len(plan.points)} points ran")
        )
    return {
        **extra,
        "api": summaries[0]["api"] if summaries else None,
        "target": summaries[0]["target"] if summaries else {},
        "sweep": {
            "mode": plan.mode,
            "load_axis": plan.load_axis,
            "axes": plan.axes,
            "fixed": plan.fixed,
            "unused": plan.unused,
            "points_planned": len(plan.points),
            "points_run": len(done),
            "slo": slo or None,
            "slo_attainment": slo_attainment,
            "knee_rule": KNEE_RULE,
            "max_load_rule": MAX_LOAD_RULE,
        },
        "points": [
            {"label": point.label, "values": point.values, "dir": point.label, "summary": summary}
            for point, summary in done
        ],
        **found,
        "window": (
            {"start": min(w["start"] for w in windows), "end": max(w["end"] for w in windows)}
            if windows
            else None
        ),
        "gate": gate,
        "warnings": warnings,
        "definitions": SWEEP_DEFINITIONS,
    }
