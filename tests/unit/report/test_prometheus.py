"""The session's Prometheus: credentials, live or snapshot, the service panels' queries and
the rates between raw samples."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from hpcansible.report.prometheus import (
    PrometheusAPI,
    PrometheusError,
    duration_s,
    open_prometheus,
    scrape_interval_s,
)
from hpcansible.report.service import (
    client_scrape_line,
    counter_rates,
    gpu_specs,
    query_window,
    service_panels,
    service_specs,
)
from hpcansible.report.session import resolve_session
from report_testing import (
    SERVICE_JOB,
    START,
    FakePrometheus,
    basic,
    busy_during,
    counter_samples,
    range_answer,
    write_session,
)


def cpu_seconds(t: float) -> float:
    busy = min(max(t - START, 0), 20)
    return 0.1 * (t - START + 100) + 1.4 * busy


def test_durations_and_the_sessions_scrape_interval(home: Path):
    assert [duration_s(d) for d in ("5s", "1m30s", "500ms", "2h", "x", "5")] == [
        5,
        90,
        0.5,
        7200,
        None,
        None,
    ]
    directory = write_session(home)
    assert scrape_interval_s(resolve_session(str(directory))) == 5
    (directory / "prometheus" / "prometheus.yml").write_text("global: {scrape_interval: 15s}\n")
    assert scrape_interval_s(resolve_session(str(directory))) == 15
    (directory / "prometheus" / "prometheus.yml").unlink()
    assert scrape_interval_s(resolve_session(str(directory))) == 5


def test_the_live_prometheus_gets_the_sessions_credentials(home: Path, tmp_path: Path):
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    os.chmod(secret, stat.S_IRUSR | stat.S_IWUSR)
    fake = FakePrometheus(range_answer({}), password="s3cret")
    try:
        auth = {"username": "hpcansible", "password_file": str(secret)}
        directory = write_session(home, url=fake.url, prometheus={"url": fake.url, "auth": auth})
        with open_prometheus(resolve_session(str(directory))) as source:
            assert source.api is not None and "live Prometheus" in source.description
            source.api.query_range("up", START, START + 10, 5)
        assert all(a == basic("hpcansible", "s3cret") for _, _, a in fake.requests)
        without = PrometheusAPI(fake.url)
        with pytest.raises(PrometheusError, match="HTTP 401"):
            without.ping()
    finally:
        fake.close()


def test_an_unreachable_prometheus_is_a_reason_not_a_crash(home: Path):
    directory = write_session(home, url="http://127.0.0.1:9")  # discard: nothing listens
    with open_prometheus(resolve_session(str(directory))) as source:
        assert source.api is None
        assert "127.0.0.1:9 unreachable" in source.reason
        assert "no TSDB snapshot or folder" in source.reason


FAKE_PROMETHEUS = """\
#!{python}
# A stand-in for the prometheus program: checks that it serves a copy of the TSDB, asks for
# the basic auth of its web config, answers /-/ready and the query API.
import base64, json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
import bcrypt, yaml
args = dict(a.lstrip("-").split("=", 1) for a in sys.argv[1:])
assert (Path(args["storage.tsdb.path"]) / "chunks").is_dir(), "not a copy of the TSDB"
users = yaml.safe_load(Path(args["web.config.file"]).read_text())["basic_auth_users"]
host, port = args["web.listen-address"].rsplit(":", 1)
class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        kind, _, token = self.headers.get("Authorization", "").partition(" ")
        user, _, password = base64.b64decode(token or "Og==").decode().partition(":")
        if kind != "Basic" or user not in users or not bcrypt.checkpw(
                password.encode(), users[user].encode()):
            self.send_response(401); self.end_headers(); return
        body = json.dumps({{"status": "success", "data": {{"result": []}}}}).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
HTTPServer((host, int(port)), Handler).serve_forever()
"""


def test_a_stopped_session_is_read_from_its_snapshot_through_served_tsdb(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The same code as `prometheus ID`: a copy of the snapshot served on 127.0.0.1 with basic
    auth (a fake program stands in for Prometheus), ended afterwards."""
    fake = tmp_path / "bin" / "prometheus"
    fake.parent.mkdir()
    fake.write_text(FAKE_PROMETHEUS.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    snapshot = tmp_path / "snap"
    (snapshot / "chunks").mkdir(parents=True)
    stopped = {"url": "http://127.0.0.1:9", "snapshot": str(snapshot)}
    directory = write_session(home, status="stopped", prometheus=stopped)
    with open_prometheus(resolve_session(str(directory))) as source:
        assert source.api is not None and source.api.url.startswith("http://127.0.0.1:")
        assert str(snapshot) in source.description
        source.api.ping()
        with pytest.raises(PrometheusError, match="HTTP 401"):
            PrometheusAPI(source.api.url).ping()  # without the password
        url = source.api.url
    with pytest.raises(PrometheusError, match="unreachable"):
        PrometheusAPI(url, source.api.login).ping()  # the local Prometheus has ended


def test_cadvisor_panels_select_the_service_jobs_container(home: Path):
    record = resolve_session(str(write_session(home))).record
    specs = {spec.key: spec for spec in service_specs(record)}
    assert list(specs) == ["service_cpu", "service_memory", "service_network", "service_disk"]
    cpu = specs["service_cpu"].queries[0]
    assert cpu.counter and cpu.expr == (
        f'container_cpu_usage_seconds_total{{job="llamacpp-cadvisor",id=~".*/job_{SERVICE_JOB}"}}'
    )
    assert 'id="/"' in specs["service_cpu"].queries[1].expr


@pytest.mark.parametrize(
    ("exporter", "cpu_metric", "network"),
    [
        ("process_exporter", "namedprocess_namegroup_cpu_seconds_total", False),
        ("node_exporter", "node_cpu_seconds_total", True),
    ],
)
def test_the_other_exporters_panels(home: Path, exporter: str, cpu_metric: str, network: bool):
    service = {"name": "redis", "exporter": exporter, "exporter_job": f"redis-{exporter}"}
    record = resolve_session(str(write_session(home, service=service))).record
    specs = {spec.key: spec for spec in service_specs(record)}
    assert specs["service_cpu"].queries[0].expr.startswith(cpu_metric)
    assert bool(specs["service_network"].queries) == network
    if not network:
        assert specs["service_network"].missing == "process-exporter has no network metrics"


def test_counter_rates_are_steps_between_raw_samples():
    times = [START + 10 * k for k in range(5)]
    series = [({}, times, [cpu_seconds(t) for t in times])]
    xs, ys = counter_rates(series)
    assert xs == times
    assert ys == pytest.approx([1.5, 1.5, 1.5, 0.1, 0.1])
    reset = [({}, times[:3], [10.0, 20.0, 5.0])]
    assert counter_rates(reset)[1] == pytest.approx([1.0, 1.0, 0.5])
    gap = [({}, [0, 10, 20, 100, 110], [0, 10, 20, 100, 110])]
    assert None in counter_rates(gap)[1]


def test_service_panels_from_a_fake_prometheus(home: Path):
    memory = busy_during((START, START + 20), 2**28, 2**29)
    fake = FakePrometheus(
        range_answer({"memory": memory}),
        samples=counter_samples({"cpu_usage": cpu_seconds, "hpcansible_bench": cpu_seconds}),
    )
    try:
        record = resolve_session(str(write_session(home, url=fake.url))).record
        api = PrometheusAPI(fake.url)
        window = query_window(START - 30, START + 40, 5)
        panels = {p.key: p for p in service_panels(api, record, window, "")}
        cpu = panels["service_cpu"].lines[0]
        busy = [v for t, v in zip(cpu.times, cpu.values, strict=True) if START < t <= START + 20]
        idle = [v for t, v in zip(cpu.times, cpu.values, strict=True) if t <= START]
        assert busy == pytest.approx([1.5, 1.5]) and idle == pytest.approx([0.1] * len(idle))
        assert "rate between raw samples of container_cpu" in panels["service_cpu"].source
        assert panels["service_memory"].lines[0].values[0] == 2**28
        assert max(panels["service_memory"].lines[0].values) == 2**29
        assert panels["service_network"].missing.startswith("no samples in Prometheus")
        assert "gpu_util" not in panels, "no DCGM series, no GPU panel"
        cpu_selector = service_specs(record)[0].queries[0].expr
        assert window.samples[cpu_selector][0] == pytest.approx(START - 20)
        scraped = client_scrape_line(api, record, window)
        assert scraped is not None and scraped.label == "succeeded/s (Prometheus)"
    finally:
        fake.close()


def test_gpu_panels_appear_when_dcgm_series_exist(home: Path):
    fake = FakePrometheus(range_answer({"DCGM_FI_DEV_GPU_UTIL": lambda t: 80.0}))
    try:
        service = {"name": "llamacpp", "exporter": "none", "gpu_exporter_job": "llamacpp-gpu"}
        record = resolve_session(str(write_session(home, url=fake.url, service=service))).record
        assert gpu_specs(record)[0].queries[0].expr == 'DCGM_FI_DEV_GPU_UTIL{job="llamacpp-gpu"}'
        panels = service_panels(PrometheusAPI(fake.url), record, query_window(0, 60, 5), "")
        gpu = [p for p in panels if p.group == "gpu"]
        assert [p.key for p in gpu] == ["gpu_util"] and gpu[0].lines[0].label == "gpu 0"
        assert all(p.missing.startswith("the service has no exporter") for p in panels[:4])
    finally:
        fake.close()


def test_one_failing_query_marks_the_rest_missing_without_asking_again(home: Path):
    record = resolve_session(str(write_session(home))).record
    api = PrometheusAPI("http://127.0.0.1:9")
    window = query_window(START, START + 60, 5)
    panels = service_panels(api, record, window, "")
    assert all("unreachable" in p.missing for p in panels)
    assert window.failure.startswith("Prometheus: http://127.0.0.1:9 unreachable")
