"""The report's images, drawn with matplotlib's Agg backend into PNG bytes.

Every time panel has the same size, margins and x range, so that stacked on the page they
read as one time axis; the legend sits outside on the right where it hides no data.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure

from hpcansible.report.distributions import Distribution
from hpcansible.report.panels import Line, Marks, TimePanel
from hpcansible.report.results import LOAD_AXES, ClientResults, Point, dig, iso

DPI = 100
TIME_PANEL_SIZE = (12.0, 2.3)  # inches
MARGINS = {"left": 0.07, "right": 0.79, "top": 0.86, "bottom": 0.2}
WINDOW_COLOR = "#2ca02c"
GATE_COLOR = "#d62728"
COLORS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
BYTE_UNITS = ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"), (1, "B"))


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def byte_scale(largest: float) -> tuple[float, str]:
    for size, name in BYTE_UNITS:
        if largest >= size:
            return size, name
    return 1, "B"


def _scaled(panel: TimePanel) -> tuple[float, str]:
    """Divisor and unit label for the panel's values (bytes in B..GiB)."""
    if panel.unit not in ("bytes", "bytes/s"):
        return 1.0, panel.unit
    largest = max((v for line in panel.lines for v in line.values if v is not None), default=0)
    size, name = byte_scale(largest)
    return float(size), name + ("/s" if panel.unit == "bytes/s" else "")


def _bar_width(times: Sequence[float]) -> float:
    gaps = [b - a for a, b in pairwise(times) if b > a]
    return min(gaps) if gaps else 1.0


def mark_axes(ax, marks: Marks) -> None:
    """The measured windows (shaded, one per sweep point) and the gate (a dashed line)."""
    for n, (start, end, label) in enumerate(marks.windows):
        ax.axvspan(
            start - marks.origin,
            end - marks.origin,
            color=WINDOW_COLOR,
            alpha=0.10 if n % 2 else 0.16,
            lw=0,
            label="measured window" if n == 0 else None,
        )
        if label and len(marks.windows) > 1:  # staggered: short windows sit side by side
            ax.text(
                (start + end) / 2 - marks.origin,
                0.97 - 0.09 * (n % 3),
                label,
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="top",
                fontsize=7,
                color="#2b6b2b",
            )
    if marks.gate is not None:
        ax.axvline(
            marks.gate - marks.origin, color=GATE_COLOR, ls="--", lw=1.2, label="gate released"
        )
    ax.set_xlim(marks.x_range[0] - marks.origin, marks.x_range[1] - marks.origin)


def x_label(marks: Marks) -> str:
    return f"seconds from {iso(marks.origin)} (the measured window's start)"


def _draw_line(ax, line: Line, origin: float, divisor: float, color: str) -> None:
    xs = [t - origin for t in line.times]
    ys = [None if v is None else v / divisor for v in line.values]
    if line.style == "bars":
        width = _bar_width(line.times)
        ax.bar(
            xs,
            [y or 0 for y in ys],
            width=width * 0.9,
            color="#d62728",
            alpha=0.55,
            label=line.label,
        )
        return
    clean = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
    if not clean:
        return
    px, py = zip(*clean, strict=True)
    if line.style in ("steps", "dashed-steps"):
        ax.plot(
            xs,
            [float("nan") if y is None else y for y in ys],
            drawstyle="steps-pre",
            ls="--" if line.style == "dashed-steps" else "-",
            lw=1.6,
            color=color,
            label=line.label,
        )
    elif line.style == "points":
        ax.plot(px, py, ls=":", marker="o", ms=3, lw=1, color=color, label=line.label)
    elif line.style == "dashed":
        ax.plot(px, py, ls="--", lw=1.2, color=color, label=line.label)
    else:
        ax.plot(
            px,
            py,
            lw=1.6,
            marker="." if len(px) < 80 else None,
            ms=4,
            color=color,
            label=line.label,
        )


def time_panel(panel: TimePanel, marks: Marks) -> bytes:
    figure = Figure(figsize=TIME_PANEL_SIZE)
    figure.subplots_adjust(**MARGINS)
    ax = figure.add_subplot()
    divisor, unit = _scaled(panel)
    mark_axes(ax, marks)
    colors = iter(COLORS * 4)
    for line in panel.lines:
        _draw_line(ax, line, marks.origin, divisor, next(colors))
    largest = max((v for line in panel.lines for v in line.values if v is not None), default=0)
    if largest == 0:
        ax.text(
            0.5,
            0.5,
            "all zero in this range",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=9,
            color="#555555",
        )
        ax.set_ylim(-0.04, 1)  # a line at zero stays visible above the spine
    else:
        top = largest / divisor * 1.12
        ax.set_ylim(bottom=-0.04 * top, top=top)
    ax.set_title(panel.title, loc="left", fontsize=10)
    ax.set_ylabel(unit, fontsize=9)
    ax.set_xlabel(x_label(marks), fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return png(figure)


TITLES = {"ttft": "TTFT", "tpot": "TPOT", "itl": "ITL", "e2e": "E2E"}


def distributions(per_point: dict[str, dict[str, Distribution]], points: list[Point]) -> bytes:
    """One histogram per metric; in a sweep one outline per point."""
    metrics = [m for m in TITLES if any(m in found for found in per_point.values())]
    columns = 2
    rows = (len(metrics) + 1) // columns
    figure = Figure(figsize=(12, 3.0 * rows))
    figure.subplots_adjust(left=0.07, right=0.97, top=0.92, bottom=0.1, hspace=0.55, wspace=0.2)
    single = len(per_point) == 1
    for n, metric in enumerate(metrics):
        ax = figure.add_subplot(rows, columns, n + 1)
        found = [(label, d[metric]) for label, d in per_point.items() if metric in d]
        low = min(min(d.values_ms) for _, d in found)
        high = max(max(d.values_ms) for _, d in found)
        bins = 40 if high > low else 1
        edges = [low + (high - low) * i / bins for i in range(bins + 1)] if high > low else None
        for k, (label, dist) in enumerate(found):
            ax.hist(
                dist.values_ms,
                bins=edges or 1,
                weights=dist.counts,
                histtype="bar" if single else "step",
                lw=1.4,
                color=COLORS[k % len(COLORS)],
                alpha=0.75 if single else 1.0,
                label=label or None,
            )
        if single:
            stats = dig(points[0].summary, "latency_ms", metric) or {}
            for stat, style in (("p50", "-"), ("p99", "--")):
                if stats.get(stat) is not None:
                    ax.axvline(
                        stats[stat],
                        color="#333333",
                        ls=style,
                        lw=1,
                        label=f"{stat} {stats[stat]:g} ms",
                    )
        total = sum(d.total for _, d in found)
        what = "gaps" if metric == "itl" else "requests"
        ax.set_title(f"{TITLES[metric]} ({total} {what})", loc="left", fontsize=10)
        ax.set_xlabel("ms", fontsize=8)
        ax.set_ylabel(what, fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
    return png(figure)


def _load_axis(results: ClientResults) -> str:
    if results.load_axis in results.axes:
        return results.load_axis
    return next((a for a in LOAD_AXES if a in results.axes), results.axes[0])


def _groups(results: ClientResults, axis: str) -> dict[str, list[tuple[float, Point]]]:
    """Points by the values of the other swept axes, each group ordered by the load axis."""
    others = [a for a in results.axes if a != axis]
    groups: dict[str, list[tuple[float, Point]]] = defaultdict(list)
    for n, point in enumerate(results.points):
        key = ", ".join(f"{k} {point.values[k]:g}" for k in others if k in point.values)
        groups[key].append((point.values.get(axis, float(n)), point))
    return {k: sorted(v, key=lambda item: item[0]) for k, v in groups.items()}


Curve = tuple[str, tuple[str, ...]]  # legend, path in a point's summary


@dataclass(frozen=True)
class SweepPanel:
    title: str
    unit: str
    curves: tuple[Curve, ...]
    twin_unit: str = ""  # a second y axis on the right, dashed
    twin: tuple[Curve, ...] = ()


SWEEP_PANELS = (
    SweepPanel(
        "throughput",
        "req/s",
        (("req/s", ("throughput", "requests_per_s")),),
        "tok/s",
        (("output tok/s", ("throughput", "output_tokens_per_s")),),
    ),
    SweepPanel(
        "p99 latency",
        "ms",
        (
            ("TTFT p99", ("latency_ms", "ttft", "p99")),
            ("E2E p99", ("latency_ms", "e2e", "p99")),
            ("TPOT p99", ("latency_ms", "tpot", "p99")),
        ),
    ),
    SweepPanel(
        "goodput",
        "req/s",
        (("goodput req/s", ("goodput", "requests_per_s")),),
        "share",
        (("SLO attainment", ("goodput", "attainment")),),
    ),
)
SLO_FOR = {"TTFT p99": "ttft_ms", "E2E p99": "e2e_ms", "TPOT p99": "tpot_ms"}


def _plot_curves(ax, groups, curves: tuple[Curve, ...], colors, style: str) -> dict[str, str]:
    """Each curve for each group; {legend name: colour} of what was drawn."""
    drawn = {}
    for group, members in groups.items():
        for name, path in curves:
            found = [(x, dig(p.summary, *path)) for x, p in members]
            found = [(x, y) for x, y in found if isinstance(y, int | float)]
            if not found:
                continue
            xs, ys = zip(*found, strict=True)
            shade = next(colors)
            ax.plot(
                xs,
                ys,
                marker="o",
                ms=4,
                lw=1.5,
                ls=style,
                color=shade,
                label=f"{name} ({group})" if group else name,
            )
            drawn[name] = shade
    return drawn


def _slo(results: ClientResults) -> tuple[dict[str, float], float | None]:
    for point in results.points:
        slo = dig(point.summary, "goodput", "slo")
        if isinstance(slo, dict) and slo:
            return slo, dig(point.summary, "goodput", "slo_attainment")
    return {}, None


def sweep(results: ClientResults) -> bytes:
    """Throughput, p99 latency and goodput against the load; the knee, the highest load
    meeting the SLO, the SLO limits and the attainment asked for marked."""
    axis = _load_axis(results)
    groups = _groups(results, axis)
    slo, target = _slo(results)
    by_label = {p.label: p for p in results.points}
    figure = Figure(figsize=(12, 3.8))
    figure.subplots_adjust(left=0.05, right=0.95, top=0.88, bottom=0.15, wspace=0.42)
    for n, panel in enumerate(SWEEP_PANELS):
        ax = figure.add_subplot(1, len(SWEEP_PANELS), n + 1)
        colors = iter(COLORS * 4)
        drawn = _plot_curves(ax, groups, panel.curves, colors, "-")
        for name, shade in drawn.items():
            if SLO_FOR.get(name) in slo:
                limit = slo[SLO_FOR[name]]
                ax.axhline(
                    limit, color=shade, ls=":", lw=1.2, label=f"SLO {SLO_FOR[name]} {limit:g}"
                )
        handles, labels = ax.get_legend_handles_labels()
        if panel.twin:
            twin = ax.twinx()
            _plot_curves(twin, groups, panel.twin, colors, "--")
            if panel.twin_unit == "share" and target:
                twin.axhline(
                    target, color="#555555", ls=":", lw=1.2, label=f"attainment asked {target:.0%}"
                )
                twin.set_ylim(0, 1.05)
            twin.set_ylabel(panel.twin_unit, fontsize=9)
            twin.tick_params(labelsize=8)
            more = twin.get_legend_handles_labels()
            handles, labels = handles + more[0], labels + more[1]
        for label, style, name, color in (
            (results.knee, "--", "knee", GATE_COLOR),
            (results.max_load_meeting_slo, ":", "max load meeting SLO", WINDOW_COLOR),
        ):
            point = by_label.get(label or "")
            if point is not None and axis in point.values:
                line = ax.axvline(point.values[axis], color=color, ls=style, lw=1.3)
                handles.append(line)
                labels.append(f"{name}: {label}")
        ax.set_title(f"{panel.title} against {axis}", loc="left", fontsize=10)
        ax.set_xlabel(axis, fontsize=9)
        ax.set_ylabel(panel.unit, fontsize=9)
        ax.set_ylim(bottom=0)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.legend(handles, labels, fontsize=7, frameon=False, loc="best")
    return png(figure)
