"""Which engine runs, what each native tool refuses (one line naming the option), the sweep
axes of redis-benchmark, and a real run whose password never shows on its command line."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from hpcansible.errors import UserError
from hpcansible_jobs.bench.config import build_config, check_parameters
from hpcansible_jobs.bench.native import resolve_engine
from hpcansible_jobs.bench.native.base import Invocation
from hpcansible_jobs.bench.native.process import execute
from hpcansible_jobs.bench.native.redis_benchmark import invocation
from hpcansible_jobs.bench.runner import run_benchmark
from hpcansible_jobs.bench.sweep import plan_sweep


def config(api: str, endpoint: str, **values):
    return build_config({"endpoint": endpoint, "api": api, "output": "/tmp/x", **values})


@pytest.mark.parametrize(
    ("api", "endpoint", "values", "engine"),
    [
        ("redis", "redis://h:6379", {}, "python"),
        ("redis", "redis://h:6379", {"tests": "set,get"}, "native"),
        ("redis", "redis://h:6379", {"pipeline": 8}, "native"),
        ("redis", "redis://h:6379", {"engine": "native"}, "native"),
        ("http", "http://h:80", {"duration": 2}, "python"),
        ("http", "http://h:80", {"duration": 2, "engine": "native"}, "native"),
        ("postgres", "postgres://h:5432", {}, "native"),
        ("mysql", "mysql://h:3306", {}, "native"),
        ("chroma", "http://h:8000", {}, "python"),
    ],
)
def test_the_api_and_the_options_pick_the_engine(api, endpoint, values, engine) -> None:
    assert resolve_engine(config(api, endpoint, **values)) == engine


@pytest.mark.parametrize(
    ("api", "values", "message"),
    [
        ("postgres", {"engine": "python"}, "engine: python: there is no Python engine"),
        ("redis", {"tests": "set", "rate": 100}, "rate: not with redis-benchmark: the native"),
        ("redis", {"tests": "set", "redis_command": "get"}, "redis_command: give tests or"),
        ("redis", {"engine": "native", "redis_command": "mixed"}, "redis_command: mixed: "),
        ("redis", {"tests": "set,nope"}, "tests: 'nope' is not a redis-benchmark test"),
        ("redis", {"tests": "set", "duration": 5}, "duration: redis-benchmark runs a number"),
        ("redis", {"engine": "python", "pipeline": 4}, "pipeline: only a native engine takes"),
        ("http", {"engine": "native"}, "duration: required with wrk"),
        ("http", {"engine": "native", "duration": 2, "requests": 10}, "requests: not with wrk"),
        ("mysql", {"tests": "tpcb-like"}, "tests: 'tpcb-like' is not a sysbench OLTP test"),
        ("postgres", {"tests": "oltp_read_write"}, "is not a pgbench built-in script"),
        ("chroma", {"engine": "native"}, "engine: native: there is no native tool for chroma"),
    ],
)
def test_what_a_native_tool_cannot_do_is_one_line(api, values, message) -> None:
    with pytest.raises(UserError) as caught:
        check_parameters(values, "client.yml: client.parameters", api=api)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_redis_benchmark_sweeps_clients_value_sizes_and_pipeline_depths() -> None:
    cfg = config(
        "redis", "redis://h:6379", engine="native", tests="set,get",
        concurrency=[1, 10], value_sizes=[64, 1024], pipeline=[1, 16],
    )  # fmt: skip
    plan = plan_sweep(cfg)
    assert plan.axes == {"concurrency": [1, 10], "value_size": [64, 1024], "pipeline": [1, 16]}
    assert len(plan.points) == 8
    point = plan.points[-1]
    assert point.label == "concurrency-10_value_size-1024_pipeline-16"
    assert (point.config.concurrency, point.config.value_size, point.config.pipeline) == (
        (10,), 1024, (16,),
    )  # fmt: skip
    argv = invocation(point.config, "redis-benchmark", Path("/tmp")).argv
    assert argv[argv.index("-d") + 1] == "1024" and argv[argv.index("-P") + 1] == "16"


def test_the_python_engine_has_no_native_axes() -> None:
    plan = plan_sweep(config("redis", "redis://h:6379", concurrency=[1, 4]))
    assert plan.axes == {"concurrency": [1, 4]}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def redis_with_password(tmp_path_factory):
    server_program = shutil.which("redis-server")
    if server_program is None or shutil.which("redis-benchmark") is None:
        pytest.skip("redis-server and redis-benchmark (Debian redis-tools) are not installed")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [server_program, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "pw s3cret",
         "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=10)


def test_the_password_reaches_redis_benchmark_but_not_its_command_line(
    redis_with_password, tmp_path: Path
) -> None:
    cfg = config("redis", redis_with_password, tests="set", requests=200000, password="pw s3cret")
    seen: list[bytes] = []

    def look(pid: int) -> None:
        time.sleep(0.3)
        seen.append(Path(f"/proc/{pid}/cmdline").read_bytes())

    done = execute(invocation(cfg, "redis-benchmark", tmp_path), on_start=look)
    assert done.returncode == 0, done.stdout[-500:] + done.stderr[-500:]
    assert "SET" in done.stdout and "requests per second" in done.stdout
    assert seen and b"@HPCANSIBLE_SECRET" in seen[0] and b"s3cret" not in seen[0]


def test_without_the_preload_the_placeholder_is_refused(redis_with_password, tmp_path) -> None:
    cfg = config("redis", redis_with_password, tests="set", requests=10, password="pw s3cret")
    plain = invocation(cfg, "redis-benchmark", tmp_path)
    done = execute(Invocation(plain.argv, env=plain.env, secret_argument=False))
    assert "WRONGPASS" in done.stdout + done.stderr


def test_a_native_run_writes_the_same_summary_with_engine_and_native(
    redis_with_password, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    cfg = build_config(
        {"endpoint": redis_with_password, "api": "redis", "output": str(out), "quiet": True,
         "tests": "ping,set", "requests": 2000, "concurrency": 4, "password": "pw s3cret"}
    )  # fmt: skip
    assert run_benchmark(cfg) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["engine"]["name"] == "redis-benchmark"
    assert "s3cret" not in json.dumps(summary)
    assert set(summary["native"]["tests"]) == {"PING_INLINE", "PING_MBULK", "SET"}
    assert summary["requests"]["succeeded"] == 6000 and summary["requests"]["failed"] == 0
    assert summary["throughput"]["requests_per_s"] > 0
    assert summary["latency_ms"]["e2e"]["count"] == 6000
    assert summary["window"]["start"] < summary["window"]["end"]
    assert summary["native"]["records"].startswith("none")
    assert (out / "timeseries.csv").exists() and (out / "hdr" / "e2e.hgrm").exists()
