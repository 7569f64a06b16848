"""Time panels: what each plot on the one time axis shows, before it is drawn."""

from __future__ import annotations

from dataclasses import dataclass, field

from hpcansible.report.records import ClientSeries


@dataclass
class Line:
    label: str
    times: list[float]  # epoch seconds
    values: list[float | None]
    style: str = "line"  # line | dashed | bars | points | steps | dashed-steps (steps-pre)

    @property
    def has_data(self) -> bool:
        return any(v is not None for v in self.values)


@dataclass
class TimePanel:
    key: str  # file name stem, unique in a report
    title: str
    unit: str  # req/s, ms, cores, bytes, bytes/s, %, MiB, W, MHz
    group: str  # client | service | gpu
    lines: list[Line] = field(default_factory=list)
    source: str = ""
    missing: str = ""  # why there is nothing to show

    @property
    def has_data(self) -> bool:
        return any(line.has_data for line in self.lines)


@dataclass(frozen=True)
class Marks:
    """What every time plot marks: the measured windows (one per sweep point) and the gate."""

    windows: list[tuple[float, float, str]]  # start, end, label
    gate: float | None
    origin: float  # x = 0 (the first window's start, else the first client event)
    x_range: tuple[float, float]  # epoch seconds


def client_panels(series: ClientSeries | None, missing: str = "") -> list[TimePanel]:
    if series is None or series.empty:
        reason = missing or "no per-request records and no timeseries.csv in the results"
        return [
            TimePanel("client_requests", "client: requests/s", "req/s", "client", missing=reason)
        ]
    requests = TimePanel(
        "client_requests",
        "client: succeeded requests/s and errors/s",
        "req/s",
        "client",
        [Line("succeeded/s", series.times, list(series.succeeded_per_s))],
        source=series.source,
    )
    for name, values in series.errors_per_s.items():
        requests.lines.append(Line(f"errors/s: {name}", series.times, list(values), "bars"))
    panels = [requests]
    titles = {"ttft": "client: TTFT per interval", "e2e": "client: E2E latency per interval"}
    for metric, title in titles.items():
        lines = [
            Line(name.split(" ", 1)[1], series.times, values, "points" if "p99" in name else "line")
            for name, values in series.latency_ms.items()
            if name.startswith(metric)
        ]
        if lines:
            panels.append(
                TimePanel(f"client_{metric}", title, "ms", "client", lines, series.source)
            )
    return panels
