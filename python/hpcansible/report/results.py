"""The client's results: one run or a sweep of points, read from results/summary.json.

Tolerant of every schema the client has written: a single run; the first sweep format
(`{"sweep": {"parameter", "values"}, "steps": [...]}`); and the sweep with axes, labelled
points, a knee and the highest load meeting the SLO. Fields that older sessions lack are
simply absent from the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hpcansible.errors import UserError
from hpcansible.report.session import SessionRef, read_json

SUMMARY = "summary.json"
LOAD_AXES = ("concurrency", "rate")  # preferred x axis of sweep plots


@dataclass
class Point:
    """One measured step: a whole single run, or one point of a sweep."""

    label: str  # "" for a single run
    values: dict[str, float]  # sweep axis -> value at this point
    summary: dict[str, Any]
    directory: Path

    @property
    def window(self) -> tuple[float, float] | None:
        return measured_window(self.summary, self.directory)


@dataclass
class ClientResults:
    directory: Path
    top: dict[str, Any]  # results/summary.json as written
    points: list[Point]
    axes: list[str] = field(default_factory=list)  # empty for a single run
    knee: str | None = None  # label of the knee point
    max_load_meeting_slo: str | None = None  # label
    load_axis: str = ""  # the sweep's own choice of x axis, when it names one
    knee_reason: str = ""

    @property
    def is_sweep(self) -> bool:
        return bool(self.axes)

    @property
    def window(self) -> tuple[float, float] | None:
        """From the first point's start to the last point's end."""
        windows = [w for w in (p.window for p in self.points) if w]
        if not windows:
            return None
        return min(w[0] for w in windows), max(w[1] for w in windows)


def load_results(session: SessionRef) -> ClientResults:
    path = session.results_dir / SUMMARY
    if not path.is_file():
        raise UserError(
            f"session {session.id}: no results yet ({path} is missing: the client has not "
            "finished, or it failed; see `python -m hpcansible logs "
            f"{session.id} --role client`)"
        )
    top = read_json(path)
    sweep = top.get("sweep")
    steps = top.get("steps")
    if not isinstance(sweep, dict) and not isinstance(steps, list):
        return ClientResults(session.results_dir, top, [Point("", {}, top, session.results_dir)])
    return _sweep_results(session.results_dir, top, sweep if isinstance(sweep, dict) else {})


def _sweep_results(directory: Path, top: dict[str, Any], sweep: dict[str, Any]) -> ClientResults:
    def entries(key: str) -> list[dict[str, Any]]:
        found = sweep.get(key, top.get(key))
        return [item for item in found or [] if isinstance(item, dict)]

    declared, steps = entries("points"), entries("steps")
    axes = _axis_names(sweep.get("axes", top.get("axes")))
    if not axes and "parameter" in sweep:
        axes = [str(sweep["parameter"])]
    points = []
    for n in range(max(len(declared), len(steps))):
        spec = declared[n] if n < len(declared) else {}
        step = spec.get("summary") if isinstance(spec.get("summary"), dict) else None
        if step is None:
            step = steps[n] if n < len(steps) else {}
        own = step.get("point") if isinstance(step.get("point"), dict) else {}
        values = _point_values(spec.get("values", own.get("values", step.get("values"))), axes)
        if not values and "sweep_value" in step and axes:
            values = {axes[0]: float(step["sweep_value"])}
        label = str(
            spec.get("label") or own.get("label") or step.get("label") or _label_for(values)
        )
        point_dir = directory / str(spec.get("dir") or label)
        if not _is_run_summary(step) and (point_dir / SUMMARY).is_file():
            step = read_json(point_dir / SUMMARY)
        points.append(Point(label, values, step, point_dir if point_dir.is_dir() else directory))
    knee = sweep.get("knee", top.get("knee"))
    return ClientResults(
        directory,
        top,
        points,
        axes or ["step"],
        knee=_point_label(knee, points),
        max_load_meeting_slo=_point_label(
            sweep.get("max_load_meeting_slo", top.get("max_load_meeting_slo")), points
        ),
        load_axis=str(sweep.get("load_axis") or ""),
        knee_reason=str(knee.get("reason") or "") if isinstance(knee, dict) else "",
    )


def _is_run_summary(data: dict[str, Any]) -> bool:
    return "requests" in data and "latency_ms" in data


def _axis_names(axes: Any) -> list[str]:
    if isinstance(axes, dict):
        return [str(name) for name in axes]
    names = []
    for axis in axes or []:
        if isinstance(axis, dict):
            axis = axis.get("name") or axis.get("parameter") or axis.get("key")
        if axis:
            names.append(str(axis))
    return names


def _point_values(raw: Any, axes: list[str]) -> dict[str, float]:
    if isinstance(raw, dict):
        return {str(k): v for k, v in raw.items() if isinstance(v, int | float)}
    if isinstance(raw, list | tuple):
        return {a: v for a, v in zip(axes, raw, strict=False) if isinstance(v, int | float)}
    return {}


def _label_for(values: dict[str, float]) -> str:
    return ",".join(f"{axis}-{value:g}" for axis, value in values.items()) or "step"


def _point_label(reference: Any, points: list[Point]) -> str | None:
    """A knee or max-load field (a label, a point, the values, or one axis value) -> label."""
    if reference is None or not points:
        return None
    if isinstance(reference, dict):
        if reference.get("label"):
            return str(reference["label"])
        wanted = _point_values(reference.get("values", reference), list(points[0].values))
        for point in points:
            if wanted and all(point.values.get(k) == v for k, v in wanted.items()):
                return point.label
        reference = reference.get("value")
    if isinstance(reference, str):
        return reference if any(p.label == reference for p in points) else None
    if isinstance(reference, int | float):
        for point in points:
            if reference in point.values.values():
                return point.label
    return None


# --- times ---------------------------------------------------------------------------------


def epoch_s(value: Any) -> float | None:
    """ISO 8601 (naive means UTC) or epoch seconds -> epoch seconds."""
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def iso(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def aggregate_window(directory: Path) -> tuple[float, float] | None:
    try:
        data = read_json(directory / "aggregate.json")
    except UserError:
        return None
    start, end = data.get("window_start_ns"), data.get("window_end_ns")
    if isinstance(start, int) and isinstance(end, int):
        return start / 1e9, end / 1e9
    return None


def measured_window(summary: dict[str, Any], directory: Path) -> tuple[float, float] | None:
    """summary.window, else the aggregate's window, else started_at + window_s."""
    window = summary.get("window")
    if isinstance(window, dict):
        start, end = epoch_s(window.get("start")), epoch_s(window.get("end"))
        if start is not None and end is not None:
            return start, end
    found = aggregate_window(directory)
    if found:
        return found
    start = epoch_s(summary.get("started_at"))
    length = summary.get("window_s")
    if start is not None and isinstance(length, int | float):
        return start, start + length
    return None


def gate_time(summary: dict[str, Any], record: dict[str, Any]) -> float | None:
    for source in (summary, record):
        gate = source.get("gate")
        if isinstance(gate, dict):
            released = epoch_s(gate.get("released_at"))
            if released is not None:
                return released
    return None


# --- key metrics, shared by the report's headline and `compare` -----------------------------


def dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _latency(metric: str, stat: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda s: _number(dig(s, "latency_ms", metric, stat))


def _output_received_share(summary: dict[str, Any]) -> float | None:
    recorded = _number(dig(summary, "tokens", "output_received_share"))
    if recorded is not None:
        return recorded
    asked = _number(dig(summary, "tokens", "output_asked_total"))
    received = _number(dig(summary, "tokens", "output_total"))
    return round(received / asked, 6) if asked and received is not None else None


def _empty_answers(summary: dict[str, Any]) -> float | None:
    errors = dig(summary, "requests", "errors")
    if not isinstance(errors, dict):
        return None
    return float(errors.get("empty_response", 0))


@dataclass(frozen=True)
class KeyMetric:
    name: str  # as --threshold names it
    title: str
    unit: str
    higher_is_better: bool
    read: Callable[[dict[str, Any]], float | None]


KEY_METRICS: tuple[KeyMetric, ...] = (
    KeyMetric(
        "requests", "requests measured", "", True, lambda s: _number(dig(s, "requests", "total"))
    ),
    KeyMetric(
        "success", "success rate", "", True, lambda s: _number(dig(s, "requests", "success_rate"))
    ),
    KeyMetric("empty", "empty answers", "", False, _empty_answers),
    KeyMetric(
        "throughput",
        "throughput",
        "req/s",
        True,
        lambda s: _number(dig(s, "throughput", "requests_per_s")),
    ),
    KeyMetric(
        "tokens",
        "output tokens/s",
        "tok/s",
        True,
        lambda s: _number(dig(s, "throughput", "output_tokens_per_s")),
    ),
    KeyMetric("received", "output tokens received/asked", "", True, _output_received_share),
    KeyMetric(
        "goodput", "goodput", "req/s", True, lambda s: _number(dig(s, "goodput", "requests_per_s"))
    ),
    KeyMetric(
        "attainment", "SLO attainment", "", True, lambda s: _number(dig(s, "goodput", "attainment"))
    ),
    KeyMetric("ttft_p50", "TTFT p50", "ms", False, _latency("ttft", "p50")),
    KeyMetric("ttft_p99", "TTFT p99", "ms", False, _latency("ttft", "p99")),
    KeyMetric("tpot_p50", "TPOT p50", "ms", False, _latency("tpot", "p50")),
    KeyMetric("tpot_p99", "TPOT p99", "ms", False, _latency("tpot", "p99")),
    KeyMetric("itl_p99", "ITL p99", "ms", False, _latency("itl", "p99")),
    KeyMetric("e2e_p50", "E2E p50", "ms", False, _latency("e2e", "p50")),
    KeyMetric("e2e_p99", "E2E p99", "ms", False, _latency("e2e", "p99")),
)
METRICS_BY_NAME = {metric.name: metric for metric in KEY_METRICS}
# Short names the thresholds accept: p99 and p50 are E2E's (every API has an E2E).
METRIC_ALIASES = {"p99": "e2e_p99", "p50": "e2e_p50", "tok_s": "tokens", "req_s": "throughput"}


def key_metrics(summary: dict[str, Any]) -> dict[str, float | None]:
    return {metric.name: metric.read(summary) for metric in KEY_METRICS}


def default_slo_attainment() -> float:
    """The client's default, for summaries written before it recorded its own
    (goodput.slo_attainment, goodput.met)."""
    from hpcansible_jobs.bench.config import OPTIONS_BY_NAME

    option = OPTIONS_BY_NAME.get("slo_attainment")
    return float(option.default) if option is not None else 0.9


@dataclass(frozen=True)
class SloVerdict:
    passed: bool
    detail: str


def slo_verdict(summary: dict[str, Any]) -> SloVerdict | None:
    """Pass when the share of measured requests meeting every SLO reaches the target;
    None when the recipe sets no SLO."""
    goodput = summary.get("goodput")
    if not isinstance(goodput, dict) or not goodput.get("slo"):
        return None
    slo = goodput["slo"]
    limits = ", ".join(f"{k} <= {v:g}" for k, v in slo.items()) if isinstance(slo, dict) else slo
    target = _number(goodput.get("slo_attainment")) or default_slo_attainment()
    attainment = _number(goodput.get("attainment"))
    if attainment is None:
        return SloVerdict(False, f"FAIL: no measured request for {limits}")
    by_key = goodput.get("attainment_by_slo") or {}
    parts = ", ".join(f"{k} {v:.1%}" for k, v in by_key.items() if _number(v) is not None)
    met = goodput.get("met")
    passed = met if isinstance(met, bool) else attainment >= target
    detail = (
        f"{'pass' if passed else 'FAIL'}: {attainment:.1%} of requests meet {limits} "
        f"(needs {target:.0%}" + (f"; {parts})" if parts else ")")
    )
    return SloVerdict(passed, detail)


def flags(summary: dict[str, Any]) -> list[str]:
    """The run's flags and warnings as lines (the client health verdict included)."""
    lines = []
    for key in ("flags", "warnings"):
        for item in summary.get(key) or []:
            if isinstance(item, dict):
                item = (
                    item.get("message")
                    or item.get("reason")
                    or ", ".join(f"{k}: {v}" for k, v in item.items())
                )
            lines.append(str(item))
    health = summary.get("client_health")
    # summaries with `warnings` name an invalid client there themselves
    if "warnings" not in summary and isinstance(health, dict) and health.get("valid") is False:
        reasons = "; ".join(health.get("invalid_reasons") or []) or "see client_health"
        lines.append(f"invalid run, the client was the bottleneck: {reasons}")
    stopped = dig(summary, "load", "achieved", "stopped_early")
    if stopped:
        lines.append(f"stopped early: {stopped}")
    return lines
