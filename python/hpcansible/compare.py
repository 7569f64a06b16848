"""`compare A [B ...]`: key metrics side by side, deltas against the baseline A, thresholds
that fail a CI job, each session's SLO verdict, and a JUnit XML report.

A sweep contributes one column per point; a point is compared with the baseline's point of
the same label (else the baseline's first).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hpcansible.errors import UserError
from hpcansible.report.results import (
    KEY_METRICS,
    METRIC_ALIASES,
    METRICS_BY_NAME,
    KeyMetric,
    key_metrics,
    load_results,
    slo_verdict,
)
from hpcansible.report.session import resolve_session

EXAMPLE = "p99=+10%,throughput=-10%,success=-1%"
LIMIT = re.compile(r"^([+-]?)(\d+(?:\.\d*)?|\.\d+)(%?)$")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="key metrics of sessions side by side; exit 1 when a threshold is crossed",
        description="Print the key metrics of the sessions side by side with their deltas "
        "against the first (the baseline). Exit 1 when a --threshold is crossed or a session "
        "fails its recipe's SLO. Sessions by id, session directory or results directory.",
        epilog=f"thresholds: NAME=[+|-]LIMIT[%], e.g. {EXAMPLE}. '+' fails on an increase "
        "beyond the limit, '-' on a decrease, no sign on either; '%' is relative to the "
        "baseline, else the metric's unit. Names: "
        + ", ".join([m.name for m in KEY_METRICS] + list(METRIC_ALIASES))
        + " (p99 and p50 are E2E's).",
    )
    parser.add_argument("sessions", nargs="+", metavar="SESSION", help="baseline first")
    parser.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="SPEC",
        help=f"checks against the baseline, e.g. {EXAMPLE} (repeatable)",
    )
    parser.add_argument("--junit", type=Path, metavar="FILE", help="write a JUnit XML report")
    parser.add_argument("--no-slo", action="store_true", help="show SLO verdicts, do not gate")
    parser.set_defaults(func=compare_command)


@dataclass(frozen=True)
class Threshold:
    metric: KeyMetric
    direction: str  # "+", "-" or "" (either)
    limit: float
    relative: bool
    text: str  # as given

    def change(self, value: float, base: float) -> float | None:
        """The delta this threshold measures (relative or absolute); None: undefined."""
        delta = value - base
        if not self.relative:
            return delta
        if base == 0:
            return 0.0 if delta == 0 else math.copysign(math.inf, delta)
        return delta / abs(base)

    def crossed(self, change: float) -> bool:
        if self.direction == "+":
            return change > self.limit
        if self.direction == "-":
            return change < -self.limit
        return abs(change) > self.limit


def parse_thresholds(specs: list[str]) -> list[Threshold]:
    thresholds = []
    for spec in specs:
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            name, equals, raw = item.partition("=")
            name = name.strip().lower()
            name = METRIC_ALIASES.get(name, name)
            if not equals:
                raise UserError(f"--threshold {item!r}: expected NAME=LIMIT, e.g. {EXAMPLE}")
            if name not in METRICS_BY_NAME:
                known = ", ".join([*METRICS_BY_NAME, *METRIC_ALIASES])
                raise UserError(f"--threshold {item!r}: unknown metric {name!r} (known: {known})")
            match = LIMIT.match(raw.strip())
            if not match:
                raise UserError(
                    f"--threshold {item!r}: the limit must look like +10%, -5% or 50 "
                    f"(got {raw.strip()!r})"
                )
            sign, number, percent = match.groups()
            limit = float(number) / (100 if percent else 1)
            thresholds.append(
                Threshold(METRICS_BY_NAME[name], sign, limit, bool(percent), item.strip())
            )
    return thresholds


@dataclass
class Column:
    name: str  # session id, or id/point for a sweep's point
    label: str  # point label ("" for a single run)
    summary: dict[str, Any]
    metrics: dict[str, float | None]


def load_columns(name: str) -> list[Column]:
    session = resolve_session(name)
    results = load_results(session)
    columns = []
    for point in results.points:
        title = f"{session.id}/{point.label}" if results.is_sweep else session.id
        columns.append(Column(title, point.label, point.summary, key_metrics(point.summary)))
    return columns


def baseline_for(column: Column, baseline: list[Column]) -> Column:
    return next((b for b in baseline if b.label == column.label), baseline[0])


@dataclass
class Check:
    column: str
    name: str
    passed: bool | None  # None: not comparable (skipped)
    message: str


def format_value(metric: KeyMetric, value: float | None, unit: bool = False) -> str:
    if value is None:
        return "-"
    if metric.name in ("success", "received", "attainment"):
        return f"{value:.1%}"
    if metric.name in ("requests", "empty"):
        return f"{value:,.0f}"
    text = f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
    return f"{text} {metric.unit}" if unit and metric.unit else text


def format_change(threshold: Threshold, change: float) -> str:
    if threshold.relative:
        return "inf" if math.isinf(change) else f"{change:+.1%}"
    return f"{change:+,.3f} {threshold.metric.unit}".strip()


def run_checks(
    columns: list[Column], baseline: list[Column], thresholds: list[Threshold], slo: bool
) -> list[Check]:
    checks = []
    for column in columns:
        base = baseline_for(column, baseline)
        for threshold in thresholds:
            metric = threshold.metric
            value, reference = column.metrics[metric.name], base.metrics[metric.name]
            name = f"{metric.name} {threshold.text.partition('=')[2]}"
            if value is None or reference is None:
                checks.append(Check(column.name, name, None, f"{metric.title}: not in both"))
                continue
            change = threshold.change(value, reference)
            crossed = threshold.crossed(change)
            checks.append(
                Check(
                    column.name,
                    name,
                    not crossed,
                    f"{metric.title} {format_value(metric, value, unit=True)} against "
                    f"{format_value(metric, reference)} in {base.name}: "
                    f"{format_change(threshold, change)} "
                    f"({'crosses' if crossed else 'within'} {threshold.text})",
                )
            )
        verdict = slo_verdict(column.summary)
        if slo and verdict is not None:
            checks.append(Check(column.name, "slo", verdict.passed, f"SLO {verdict.detail}"))
    return checks


def table(columns: list[Column], baseline: list[Column]) -> list[str]:
    def is_baseline(column: Column) -> bool:
        return any(column is b for b in baseline)  # A twice: the second is compared

    rows = [["metric", *(c.name + (" (baseline)" if is_baseline(c) else "") for c in columns)]]
    for metric in KEY_METRICS:
        if all(c.metrics[metric.name] is None for c in columns):
            continue
        title = f"{metric.title} ({metric.unit})" if metric.unit else metric.title
        cells = [title]
        for column in columns:
            value = column.metrics[metric.name]
            text = format_value(metric, value)
            reference = baseline_for(column, baseline).metrics[metric.name]
            if not is_baseline(column) and value is not None and reference:
                text += f" ({(value - reference) / abs(reference):+.1%})"
            cells.append(text)
        rows.append(cells)
    verdicts = [slo_verdict(c.summary) for c in columns]
    if any(verdicts):
        rows.append(
            ["SLO", *("-" if v is None else "pass" if v.passed else "FAIL" for v in verdicts)]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def junit_xml(checks: list[Check]) -> bytes:
    failures = sum(c.passed is False for c in checks)
    skipped = sum(c.passed is None for c in checks)
    attributes = {
        "name": "hpcansible compare",
        "tests": str(len(checks)),
        "failures": str(failures),
        "errors": "0",
        "skipped": str(skipped),
    }
    suites = ET.Element("testsuites", attributes)
    suite = ET.SubElement(
        suites, "testsuite", {**attributes, "timestamp": datetime.now(UTC).isoformat()}
    )
    for check in checks:
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": f"hpcansible.compare.{check.column}", "name": check.name, "time": "0"},
        )
        if check.passed is False:
            ET.SubElement(
                case,
                "failure",
                {"message": check.message, "type": "threshold" if check.name != "slo" else "slo"},
            )
        elif check.passed is None:
            ET.SubElement(case, "skipped", {"message": check.message})
        else:
            ET.SubElement(case, "system-out").text = check.message
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


def compare_command(args: argparse.Namespace) -> int:
    thresholds = parse_thresholds(args.threshold)
    loaded = [load_columns(name) for name in args.sessions]
    baseline, columns = loaded[0], [c for group in loaded for c in group]
    for line in table(columns, baseline):
        print(line)
    checks = run_checks(columns, baseline, thresholds, not args.no_slo)
    failed = [c for c in checks if c.passed is False]
    for check in failed:
        print(f"FAIL {check.column}: {check.message}")
    for check in (c for c in checks if c.passed is None):
        print(f"skip {check.column}: {check.message}")
    print(f"checks: {sum(c.passed is True for c in checks)} passed, {len(failed)} failed")
    if args.junit:
        try:
            args.junit.write_bytes(junit_xml(checks))
        except OSError as error:
            raise UserError(f"--junit {args.junit}: {error.strerror}") from None
        print(f"junit: {args.junit}", file=sys.stderr)
    return 1 if failed else 0
