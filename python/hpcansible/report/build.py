"""Build a session's report and write report.html, report.md and report_files/."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from hpcansible.report import plots, provenance
from hpcansible.report.distributions import load_distributions
from hpcansible.report.document import Block, Document, Image, Missing, Paragraph, Section, Table
from hpcansible.report.html import render_html
from hpcansible.report.markdown import FILES_DIR, render_markdown
from hpcansible.report.panels import Marks, TimePanel, client_panels
from hpcansible.report.prometheus import PrometheusSource, open_prometheus, scrape_interval_s
from hpcansible.report.records import client_series
from hpcansible.report.results import (
    KEY_METRICS,
    ClientResults,
    flags,
    gate_time,
    iso,
    key_metrics,
    load_results,
    slo_verdict,
)
from hpcansible.report.service import (
    client_scrape_line,
    machine_facts,
    query_window,
    service_panels,
    service_specs,
)
from hpcansible.report.session import SessionRef, resolve_session

PERCENTILE_COLUMNS = ("count", "mean", "p50", "p90", "p95", "p99", "p999", "max")


@dataclass
class ReportPaths:
    html: Path
    markdown: Path
    images: list[Path]
    missing: list[str] = field(default_factory=list)  # "panel: reason"


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and not unit):
        return f"{int(value):,}"
    if isinstance(value, float):
        digits = 3 if abs(value) < 10 else 1 if abs(value) < 1000 else 0
        return f"{value:,.{digits}f}"
    return str(value)


def fmt_metric(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    if name in ("success", "received", "attainment"):
        return f"{value:.1%}"
    metric = next(m for m in KEY_METRICS if m.name == name)
    return f"{fmt(value, metric.unit)} {metric.unit}".strip()


# --- the time axis -------------------------------------------------------------------------


def time_marks(
    results: ClientResults,
    record: dict[str, Any],
    first: float | None,
    last: float | None,
    scrape_interval: float,
) -> Marks:
    windows = [(w[0], w[1], p.label) for p in results.points if (w := p.window)]
    gate = gate_time(results.top, record) or gate_time(results.points[0].summary, {})
    moments = [m for m in (first, last, gate) if m is not None]
    moments += [m for w in windows for m in w[:2]]
    if not moments:
        raise ValueError("no time in the results")
    low, high = min(moments), max(moments)
    pad = max(2 * scrape_interval, 0.15 * (high - low), 10.0)
    origin = windows[0][0] if windows else low
    return Marks(windows, gate, origin, (low - pad, high + pad))


def coverage_text(samples: list[float], marks: Marks) -> Paragraph | None:
    """Did Prometheus sample the service from before the measured load to after it, and how
    far apart were its samples meanwhile?"""
    if not samples or not marks.windows:
        return None
    start, end = marks.windows[0][0], marks.windows[-1][1]
    inside = [t for t in samples if start <= t <= end]
    before = [t for t in samples if t < start][-1:]
    after = [t for t in samples if t > end][:1]
    gap = max((b - a for a, b in pairwise([*before, *inside, *after])), default=0.0)
    covered = samples[0] <= start and samples[-1] >= end
    verdict = (
        f"covered: {len(inside)} samples inside it, at most {gap:.1f} s apart."
        if covered
        else f"NOT covered: the first sample is {samples[0] - start:+.1f} s from its start, "
        f"the last {samples[-1] - end:+.1f} s from its end."
    )
    text = (
        f"Prometheus holds the service's CPU counter from {iso(samples[0])} to "
        f"{iso(samples[-1])}; the measured load ran from {iso(start)} to {iso(end)}: {verdict}"
    )
    return Paragraph(text, "note" if covered else "warning")


@dataclass
class Timeline:
    panels: list[TimePanel]
    marks: Marks | None
    facts: dict[str, str] = field(default_factory=dict)  # the exporter's machine facts
    cpu_samples: list[float] = field(default_factory=list)  # raw sample times


def timeline(
    session: SessionRef, results: ClientResults, source: PrometheusSource, scrape_interval: float
) -> Timeline:
    series = client_series(results.points)
    first = last = None
    if series is not None and not series.empty:
        first = series.times[0] - series.interval_s / 2
        last = series.times[-1] + series.interval_s / 2
    try:
        marks = time_marks(results, session.record, first, last, scrape_interval)
    except ValueError:
        return Timeline(client_panels(None, "the results hold no times"), None)
    low, high = marks.x_range
    if source.api is not None and session.active:
        high = min(high, time.time())
    window = query_window(low, high, scrape_interval)
    panels = client_panels(series)
    scraped = client_scrape_line(source.api, session.record, window)
    if scraped is not None and panels[0].has_data:
        panels[0].lines.append(scraped)
    panels += service_panels(source.api, session.record, window, source.reason)
    if source.api is None:
        return Timeline(panels, marks)
    cpu = service_specs(session.record)[0].queries
    return Timeline(
        panels,
        marks,
        machine_facts(source.api, session.record, high),
        window.samples.get(cpu[0].expr, []) if cpu else [],
    )


# --- sections ------------------------------------------------------------------------------


def headline(results: ClientResults) -> list[Block]:
    if not results.is_sweep:
        values = key_metrics(results.points[0].summary)
        rows = [
            [m.title, fmt_metric(m.name, values[m.name])]
            for m in KEY_METRICS
            if values[m.name] is not None
        ]
        return [Table(["metric", "value"], rows, "Key figures of the measured window")]
    shown = [m for m in KEY_METRICS if any(m.read(p.summary) is not None for p in results.points)]
    rows = []
    for point in results.points:
        values = key_metrics(point.summary)
        verdict = slo_verdict(point.summary)
        marks = [
            n
            for n, label in (
                ("knee", results.knee),
                ("max load meeting SLO", results.max_load_meeting_slo),
            )
            if label == point.label
        ]
        rows.append(
            [
                point.label + (f" ({', '.join(marks)})" if marks else ""),
                *(fmt_metric(m.name, values[m.name]) for m in shown),
                "-" if verdict is None else ("pass" if verdict.passed else "FAIL"),
            ]
        )
    headers = ["point", *(m.title for m in shown), "SLO"]
    return [Table(headers, rows, f"Key figures per sweep point ({', '.join(results.axes)})")]


def verdict_blocks(results: ClientResults) -> list[Block]:
    blocks: list[Block] = []
    for point in results.points:
        prefix = f"{point.label}: " if point.label else ""
        verdict = slo_verdict(point.summary)
        if verdict is None:
            blocks.append(Paragraph(f"{prefix}SLO: none in the client recipe.", "note"))
        else:
            blocks.append(
                Paragraph(f"{prefix}SLO {verdict.detail}", "note" if verdict.passed else "warning")
            )
        blocks += [Paragraph(f"{prefix}{line}", "warning") for line in flags(point.summary)]
    if results.is_sweep:
        knee = results.knee or "none (adding load kept paying)"
        reason = f" ({results.knee_reason})" if results.knee and results.knee_reason else ""
        best = results.max_load_meeting_slo or "none"
        blocks.append(Paragraph(f"Knee: {knee}{reason}. Highest load meeting the SLO: {best}."))
    return blocks


def panel_blocks(panels: list[TimePanel], marks: Marks | None) -> list[Block]:
    blocks: list[Block] = []
    for panel in panels:
        if marks is None or not panel.has_data:
            blocks.append(Missing(panel.title, panel.missing or "no data"))
            continue
        caption = panel.source
        blocks.append(Image(panel.key, panel.title, plots.time_panel(panel, marks), caption))
    return blocks


def percentile_table(results: ClientResults) -> Table:
    rows = []
    for point in results.points:
        for metric, stats in (point.summary.get("latency_ms") or {}).items():
            if isinstance(stats, dict) and stats.get("count"):
                rows.append(
                    [
                        *([point.label] if results.is_sweep else []),
                        metric,
                        *(fmt(stats.get(c), "ms") for c in PERCENTILE_COLUMNS),
                    ]
                )
    headers = [*(["point"] if results.is_sweep else []), "latency (ms)", *PERCENTILE_COLUMNS]
    return Table(headers, rows, "Percentiles of the measured requests (HdrHistogram)")


def distribution_blocks(results: ClientResults) -> list[Block]:
    per_point = {p.label: load_distributions(p.directory) for p in results.points}
    per_point = {label: found for label, found in per_point.items() if found}
    blocks: list[Block] = []
    if per_point:
        source = next(iter(next(iter(per_point.values())).values())).source
        blocks.append(
            Image(
                "distributions",
                "latency distributions",
                plots.distributions(per_point, results.points),
                f"from {source}; p50 solid, p99 dashed",
            )
        )
    else:
        blocks.append(Missing("latency distributions", "no aggregate.json and no hdr/*.hgrm"))
    blocks.append(percentile_table(results))
    definitions = next(
        (p.summary.get("definitions") for p in results.points if p.summary.get("definitions")), None
    )
    if isinstance(definitions, dict):
        rows = [[k, str(v)] for k, v in definitions.items()]
        blocks.append(Table(["term", "definition"], rows, "How each figure is computed"))
    return blocks


def sweep_blocks(results: ClientResults) -> list[Block]:
    return [
        Image(
            "sweep",
            "sweep",
            plots.sweep(results),
            "knee: dashed red; highest load meeting the SLO: dotted green; SLO limits: dotted",
        ),
    ]


def gate_blocks(results: ClientResults, record: dict[str, Any]) -> list[Block]:
    gate = results.top.get("gate") or record.get("gate")
    rows = []
    if isinstance(gate, dict):
        rows += [[f"gate {k}", fmt(v)] for k, v in gate.items()]
    for point in results.points:
        window = point.window
        if window:
            name = f"window {point.label}".strip()
            rows.append(
                [name, f"{iso(window[0])} to {iso(window[1])} ({window[1] - window[0]:.1f} s)"]
            )
    if not rows:
        return [Paragraph("No gate and no measured window recorded.", "note")]
    return [Table(["what", "value"], rows, "The start gate and the measured window")]


def provenance_blocks(
    session: SessionRef, results: ClientResults, facts: dict[str, str], source: PrometheusSource
) -> list[Block]:
    record = session.record
    blocks: list[Block] = []
    if record:
        nodes = provenance.scontrol_nodes(record, provenance.session_nodes(record))
        blocks += [provenance.jobs_table(record), provenance.hardware_table(record, nodes, facts)]
    blocks += gate_blocks(results, record)
    blocks.append(provenance.versions_table(record, results.points[0].summary))
    blocks += provenance.notes_blocks(record)
    blocks += provenance.recipe_blocks(session)
    blocks.append(
        Paragraph(
            f"Service metrics: {source.description or 'none'}; client results: "
            f"{results.directory}.",
            "note",
        )
    )
    for role in ("service", "client"):
        tail = provenance.job_log_tail(session, role)
        if tail:
            blocks.append(tail)
    return blocks


def build_document(session: SessionRef, binary: str = "prometheus") -> Document:
    results = load_results(session)
    scrape_interval = scrape_interval_s(session)
    window = results.window
    with open_prometheus(session, binary, load_end=window[1] if window else None) as source:
        found = timeline(session, results, source, scrape_interval)
    panels, marks = found.panels, found.marks
    record = session.record
    service = record.get("service", {})
    subtitle = (
        f"session {session.id} · {record.get('status', 'results only')} · created "
        f"{record.get('created', '-')} · service {service.get('name', '-')} "
        f"({service.get('type', '-')}), api {results.points[0].summary.get('api', '-')} · "
        f"report written {iso(time.time())}"
    )
    document = Document(f"hpcansible report: {session.id}", subtitle)
    summary = Section("Summary", anchor="summary")
    summary.blocks += verdict_blocks(results)
    missing = [p for p in panels if not p.has_data]
    if missing:
        lines = "; ".join(f"{p.title} ({p.missing})" for p in missing)
        summary.blocks.append(Paragraph(f"Panels not shown: {lines}", "warning"))
    summary.blocks += headline(results)
    document.sections.append(summary)
    explained = (
        "One time axis for the client and the service. Shaded green: the measured window"
        + (" of each sweep point" if results.is_sweep else "")
        + "; dashed red line: the start gate's release (when recorded). Client values per "
        "interval by completion time; service values as Prometheus scraped them "
        f"(scrape interval {scrape_interval:g} s)."
    )
    line = Section("Timeline", [Paragraph(explained, "note")], anchor="timeline")
    coverage = coverage_text(found.cpu_samples, marks) if marks else None
    if coverage:
        line.blocks.append(coverage)
    line.blocks += panel_blocks(panels, marks)
    document.sections.append(line)
    document.sections.append(
        Section("Distributions", distribution_blocks(results), anchor="distributions")
    )
    if results.is_sweep:
        document.sections.append(Section("Sweep", sweep_blocks(results), anchor="sweep"))
    document.sections.append(
        Section(
            "Provenance",
            provenance_blocks(session, results, found.facts, source),
            anchor="provenance",
        )
    )
    return document


def write_document(document: Document, directory: Path) -> ReportPaths:
    files = directory / FILES_DIR
    files.mkdir(parents=True, exist_ok=True)
    for stale in files.glob("*.png"):
        stale.unlink()
    images = []
    for image in document.images():
        path = files / f"{image.name}.png"
        path.write_bytes(image.png)
        images.append(path)
    html, markdown = directory / "report.html", directory / "report.md"
    html.write_text(render_html(document), encoding="utf-8")
    markdown.write_text(render_markdown(document), encoding="utf-8")
    missing = [f"{m.title}: {m.reason}" for m in document.missing()]
    return ReportPaths(html, markdown, images, missing)


def write_report(session: str | Path, binary: str = "prometheus") -> ReportPaths:
    """report.html, report.md and report_files/ in the session directory (an id or a path).
    Raises UserError (one line) for an unknown session or one without results."""
    ref = resolve_session(str(session))
    return write_document(build_document(ref, binary), ref.directory)
