"""The service-side panels: the service job's CPU, memory, network and disk as its exporter
names them, GPU panels where DCGM series exist, and the client's counters as scraped.

Counters are read as raw samples and turned into rates between consecutive samples, drawn
as steps over the interval each rate covers: a rate() window would smear a 20-second load
over its own length and shift it (cAdvisor's samples come every housekeeping interval,
10 s by default, whatever the scrape interval). Gauges come from query_range.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from hpcansible.report.panels import Line, TimePanel
from hpcansible.report.prometheus import MAX_POINTS, PrometheusAPI, PrometheusError


@dataclass(frozen=True)
class Query:
    legend: str  # may name labels: "gpu {gpu}"
    expr: str  # a selector for counters; any PromQL for gauges
    style: str = "line"
    counter: bool = False


@dataclass(frozen=True)
class PanelSpec:
    key: str
    title: str
    unit: str
    group: str
    queries: tuple[Query, ...]
    missing: str = ""  # this exporter cannot show it


SERVICE_PANELS = (
    ("service_cpu", "CPU", "cores"),
    ("service_memory", "memory", "bytes"),
    ("service_network", "network", "bytes/s"),
    ("service_disk", "disk I/O", "bytes/s"),
)
ServiceQueries = dict[str, tuple[Query, ...] | str]  # panel key -> queries, or why none


def _counter(legend: str, metric: str, selector: str, style: str = "steps") -> Query:
    return Query(legend, f"{metric}{{{selector}}}", style, counter=True)


def _cadvisor(job: str, job_id: str, node: str) -> tuple[str, ServiceQueries]:
    # cAdvisor names a SLURM job's cgroup .../job_<id> (v1: /slurm/uid_<uid>/job_<id>).
    sel = f'job="{job}",id=~".*/job_{job_id}"'
    root = f'job="{job}",id="/"'
    cpu = "container_cpu_usage_seconds_total"
    return f"service job {job_id}", {
        "service_cpu": (
            _counter(f"service job {job_id}", cpu, sel),
            _counter(f"whole node {node}", cpu, root, "dashed-steps"),
        ),
        "service_memory": (
            Query("working set", f"sum(container_memory_working_set_bytes{{{sel}}})"),
            Query("RSS", f"sum(container_memory_rss{{{sel}}})", "dashed"),
        ),
        "service_network": (
            _counter("received", "container_network_receive_bytes_total", sel),
            _counter("sent", "container_network_transmit_bytes_total", sel, "dashed-steps"),
        ),
        "service_disk": (
            _counter("read", "container_fs_reads_bytes_total", sel),
            _counter("written", "container_fs_writes_bytes_total", sel, "dashed-steps"),
        ),
    }


def _process_exporter(job: str, job_id: str, node: str) -> tuple[str, ServiceQueries]:
    sel = f'job="{job}"'
    memory = f'sum(namedprocess_namegroup_memory_bytes{{{sel},memtype="resident"}})'
    return f"every process on {node} (process-exporter)", {
        "service_cpu": (
            _counter("all process groups", "namedprocess_namegroup_cpu_seconds_total", sel),
        ),
        "service_memory": (Query("resident", memory),),
        "service_network": "process-exporter has no network metrics",
        "service_disk": (
            _counter("read", "namedprocess_namegroup_read_bytes_total", sel),
            _counter("written", "namedprocess_namegroup_write_bytes_total", sel, "dashed-steps"),
        ),
    }


def _node_exporter(job: str, job_id: str, node: str) -> tuple[str, ServiceQueries]:
    sel = f'job="{job}"'
    nic = f'{sel},device!="lo"'
    total, available = "node_memory_MemTotal_bytes", "node_memory_MemAvailable_bytes"
    return f"node {node} (node_exporter)", {
        "service_cpu": (
            _counter("busy (every mode but idle)", "node_cpu_seconds_total", f'{sel},mode!="idle"'),
        ),
        "service_memory": (
            Query("used (total - available)", f"sum({total}{{{sel}}}) - sum({available}{{{sel}}})"),
        ),
        "service_network": (
            _counter("received", "node_network_receive_bytes_total", nic),
            _counter("sent", "node_network_transmit_bytes_total", nic, "dashed-steps"),
        ),
        "service_disk": (
            _counter("read", "node_disk_read_bytes_total", sel),
            _counter("written", "node_disk_written_bytes_total", sel, "dashed-steps"),
        ),
    }


EXPORTERS = {
    "cadvisor": _cadvisor,
    "process_exporter": _process_exporter,
    "node_exporter": _node_exporter,
}


def service_specs(record: dict[str, Any]) -> list[PanelSpec]:
    """The service job's CPU, memory, network and disk, as its exporter names them."""
    service = record.get("service", {})
    exporter = service.get("exporter") or "none"
    job = service.get("exporter_job") or f"{service.get('name', '')}-{exporter}"
    service_job = record.get("jobs", {}).get("service", {})
    make = EXPORTERS.get(exporter)
    if make is None:
        scope = "service"
        reason = f"the service has no exporter Prometheus knows (service.exporter: {exporter})"
        queries: ServiceQueries = dict.fromkeys((key for key, _, _ in SERVICE_PANELS), reason)
    else:
        job_id = str(service_job.get("job_id", "?"))
        scope, queries = make(job, job_id, service_job.get("node") or "its node")
    specs = []
    for key, what, unit in SERVICE_PANELS:
        found = queries[key]
        if isinstance(found, str):
            specs.append(PanelSpec(key, f"{scope}: {what}", unit, "service", (), found))
        else:
            specs.append(PanelSpec(key, f"{scope}: {what}", unit, "service", found))
    return specs


def gpu_specs(record: dict[str, Any]) -> list[PanelSpec]:
    """DCGM's names, from the service's GPU exporter job (`<service>-gpu`)."""
    service = record.get("service", {})
    job = service.get("gpu_exporter_job") or f"{service.get('name', '')}-gpu"
    legend = "gpu {gpu}"
    return [
        PanelSpec(
            f"gpu_{key}", f"GPU: {title}", unit, "gpu", (Query(legend, f'{name}{{job="{job}"}}'),)
        )
        for key, title, unit, name in (
            ("util", "utilisation", "%", "DCGM_FI_DEV_GPU_UTIL"),
            ("memory", "framebuffer used", "MiB", "DCGM_FI_DEV_FB_USED"),
            ("power", "power", "W", "DCGM_FI_DEV_POWER_USAGE"),
            ("clock", "SM clock", "MHz", "DCGM_FI_DEV_SM_CLOCK"),
        )
    ]


def client_counter(record: dict[str, Any]) -> Query | None:
    """The client's own counter as Prometheus scraped it: it shows the scrape coverage."""
    name = record.get("client", {}).get("name")
    if not name:
        return None
    selector = f'job="{name}",outcome="success"'
    return _counter(
        "succeeded/s (Prometheus)", "hpcansible_bench_requests_total", selector, "dashed-steps"
    )


def _legend(template: str, labels: dict[str, str]) -> str:
    try:
        return template.format_map(labels)
    except (KeyError, ValueError):
        return template.split(" {", 1)[0]


@dataclass
class QueryWindow:
    start: float
    end: float
    step: float
    failure: str = ""  # the first error: later queries are not tried
    samples: dict[str, list[float]] = field(default_factory=dict)  # selector -> sample times


def query_window(start: float, end: float, scrape_interval: float) -> QueryWindow:
    return QueryWindow(start, end, max(scrape_interval, (end - start) / MAX_POINTS))


Series = tuple[dict[str, str], list[float], list[float | None]]


def counter_rates(series: list[Series]) -> tuple[list[float], list[float | None]]:
    """Sum over the series of the rate between consecutive samples, as steps: the first
    point opens the first interval, each next point closes one (drawstyle steps-pre). A gap
    longer than three typical intervals breaks the line."""
    rates: dict[float, float] = defaultdict(float)
    opened: dict[float, float] = {}
    for _, times, values in series:
        pairs = [(t, v) for t, v in zip(times, values, strict=True) if v is not None]
        for (t0, v0), (t1, v1) in pairwise(pairs):
            if t1 <= t0:
                continue
            delta = v1 - v0 if v1 >= v0 else v1  # a counter reset starts from 0
            key = round(t1, 1)
            rates[key] += delta / (t1 - t0)
            opened[key] = min(opened.get(key, t0), t0)
    if not rates:
        return [], []
    ends = sorted(rates)
    typical = statistics.median(end - opened[end] for end in ends)
    times: list[float] = [opened[ends[0]]]
    values: list[float | None] = [rates[ends[0]]]
    for end in ends:
        if end - opened[end] > 3 * typical:
            times.append(opened[end])
            values.append(None)
            times.append(opened[end])
            values.append(rates[end])
        times.append(end)
        values.append(rates[end])
    return times, values


def fetch_line(api: PrometheusAPI, query: Query, window: QueryWindow) -> list[Line]:
    if query.counter:
        found = api.samples(query.expr, window.start, window.end)
        if found:
            window.samples.setdefault(query.expr, found[0][1])
        times, values = counter_rates(found)
        return [Line(query.legend, times, values, query.style)] if times else []
    found = api.query_range(query.expr, window.start, window.end, window.step)
    return [Line(_legend(query.legend, labels), t, v, query.style) for labels, t, v in found]


def describe(query: Query) -> str:
    return f"rate between raw samples of {query.expr}" if query.counter else query.expr


def run_spec(api: PrometheusAPI, spec: PanelSpec, window: QueryWindow) -> TimePanel:
    panel = TimePanel(spec.key, spec.title, spec.unit, spec.group, missing=spec.missing)
    if spec.missing:
        return panel
    if window.failure:
        panel.missing = window.failure
        return panel
    for query in spec.queries:
        try:
            panel.lines += fetch_line(api, query, window)
        except PrometheusError as error:
            window.failure = panel.missing = f"Prometheus: {error}"
            return panel
    panel.source = "Prometheus: " + "; ".join(describe(q) for q in spec.queries)
    if not panel.has_data:
        panel.missing = f"no samples in Prometheus for {spec.queries[0].expr}"
    return panel


def service_panels(
    api: PrometheusAPI | None, record: dict[str, Any], window: QueryWindow, unavailable: str
) -> list[TimePanel]:
    """CPU, memory, network, disk, then GPU panels where DCGM series exist."""
    specs = service_specs(record)
    if api is None:
        # without a session record the exporter is unknown: the missing record is the reason
        return [
            TimePanel(
                s.key,
                s.title,
                s.unit,
                s.group,
                missing=(s.missing if record else "") or unavailable,
            )
            for s in specs
        ]
    panels = [run_spec(api, spec, window) for spec in specs]
    for spec in gpu_specs(record):
        panel = run_spec(api, spec, window)
        if panel.has_data:
            panels.append(panel)
    return panels


def client_scrape_line(
    api: PrometheusAPI | None, record: dict[str, Any], window: QueryWindow
) -> Line | None:
    query = client_counter(record)
    if api is None or query is None or window.failure:
        return None
    try:
        lines = fetch_line(api, query, window)
    except PrometheusError:
        return None
    return lines[0] if lines else None


def machine_facts(api: PrometheusAPI, record: dict[str, Any], at: float) -> dict[str, str]:
    """What the exporter says about the service's node (cAdvisor's machine_* metrics, or
    node_exporter's)."""
    job = record.get("service", {}).get("exporter_job")
    if not job:
        return {}
    facts: dict[str, str] = {}
    sel = f'job="{job}"'
    for title, expr, scale, unit in (
        ("CPU cores", f"max(last_over_time(machine_cpu_cores{{{sel}}}[1h]))", 1, ""),
        ("memory", f"max(last_over_time(machine_memory_bytes{{{sel}}}[1h]))", 2**30, " GiB"),
        (
            "CPU cores",
            f'count(last_over_time(node_cpu_seconds_total{{{sel},mode="idle"}}[1h]))',
            1,
            "",
        ),
        ("memory", f"max(last_over_time(node_memory_MemTotal_bytes{{{sel}}}[1h]))", 2**30, " GiB"),
    ):
        if title in facts:
            continue
        try:
            found = api.query(expr, at)
        except PrometheusError:
            return facts
        if found and found[0][1] is not None:
            facts[title] = f"{found[0][1] / scale:.3g}{unit}"
    return facts
