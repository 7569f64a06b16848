"""The native tools' output, captured from the real tools (fixtures/), parsed into figures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hpcansible_jobs.bench.config import build_config
from hpcansible_jobs.bench.native import pgbench, redis_benchmark, sysbench, wrk
from hpcansible_jobs.bench.native.base import Execution, ToolFailed

FIXTURES = Path(__file__).with_name("fixtures")


def execution(stdout: str, stderr: str = "", returncode: int = 0) -> Execution:
    return Execution(returncode, stdout, stderr, start_ns=0, end_ns=10**10, cpu_s=1.0)


def config(api: str, endpoint: str, **values):
    return build_config({"endpoint": endpoint, "api": api, "output": "/tmp/x", **values})


def test_redis_benchmark_blocks_give_each_test_and_its_distribution() -> None:
    text = (FIXTURES / "redis_benchmark_ping_set_get.txt").read_text()
    tests = redis_benchmark.parse_blocks(text)
    assert list(tests) == ["PING_INLINE", "PING_MBULK", "SET", "GET"]
    assert all(figures["requests"] == 20000 for figures in tests.values())
    assert tests["SET"]["requests_per_s"] == 74906.37
    assert tests["GET"]["latency_ms"] == {
        "avg": 0.063, "min": 0.024, "p50": 0.063, "p95": 0.095, "p99": 0.135, "max": 6.087,
    }  # fmt: skip
    assert sum(count for _, count in tests["GET"]["distribution"]) == 20000


def test_redis_benchmark_result_adds_the_tests_up() -> None:
    text = (FIXTURES / "redis_benchmark_ping_set_get.txt").read_text()
    cfg = config("redis", "redis://h:6379", tests="ping,set,get", requests=20000)
    result = redis_benchmark.parse(execution(text), cfg, Path("/tmp"))
    assert result.operations == 80000 and result.failed == 0
    expected = sum(20000 / rps for rps in (68493.15, 76335.88, 74906.37, 86956.52))
    assert result.seconds == pytest.approx(expected, rel=1e-4)
    assert result.latency.count == 80000
    assert result.latency.max_ns == pytest.approx(6.087e6)
    assert 0.05 < result.latency.percentile_ms(50) < 0.09


def test_redis_benchmark_without_the_password_fails_with_the_servers_answer() -> None:
    text = (FIXTURES / "redis_benchmark_noauth.txt").read_text()
    cfg = config("redis", "redis://h:6379", tests="set")
    with pytest.raises(ToolFailed, match="NOAUTH Authentication required"):
        redis_benchmark.parse(execution(text, returncode=1), cfg, Path("/tmp"))


def test_redis_benchmark_progress_line_is_a_live_sample() -> None:
    parser = redis_benchmark.LiveParser(config("redis", "redis://h:6379", tests="set"))
    sample = parser.feed("SET: rps=57160.0 (overall: 72908.2) avg_msec=0.076 (overall: 0.076)")
    assert sample is not None and sample.test == "SET" and sample.throughput == 57160.0
    assert sample.latency_mean_ms == 0.076
    assert parser.feed("====== SET ======") is None


def test_redis_benchmark_live_count_never_runs_ahead_of_the_tests_requests() -> None:
    parser = redis_benchmark.LiveParser(
        config("redis", "redis://h:6379", tests="set", requests=100)
    )
    parser.started(0)
    parser.last -= 10  # the test began 10 s ago: its overall rates below mean far more
    counted = [
        parser.feed(f"SET: rps=9000.0 (overall: {rate}) avg_msec=0.076 (overall: 0.076)").completed
        for rate in ("9000.0", "9500.0", "inf")
    ]
    assert sum(counted) == 100 and counted[-1] == 0


def test_redis_benchmark_command_has_the_placeholder_not_the_password() -> None:
    cfg = config("redis", "redis://:s3cret@node1:6380", tests="set,get", concurrency=4,
                 pipeline=8, value_size=512, requests=1000)  # fmt: skip
    invocation = redis_benchmark.invocation(cfg, "redis-benchmark", Path("/tmp"))
    assert "s3cret" not in invocation.shown()
    assert invocation.argv[-2:] == ["-a", "@HPCANSIBLE_SECRET"]
    assert invocation.env == {"HPCANSIBLE_SECRET": "s3cret"} and invocation.secret_argument
    for flag, value in (("-h", "node1"), ("-p", "6380"), ("-c", "4"), ("-P", "8"),
                        ("-d", "512"), ("-n", "1000"), ("-t", "set,get")):  # fmt: skip
        assert invocation.argv[invocation.argv.index(flag) + 1] == value


def test_wrk_report_line_gives_requests_errors_and_latency() -> None:
    text = (FIXTURES / "wrk_report.txt").read_text()
    cfg = config("http", "http://h:80/", engine="native", duration=1)
    result = wrk.parse(execution(text), cfg, Path("/tmp"))
    report = wrk.report_of(text)
    assert report is not None
    assert result.operations == report["requests"] > 0
    assert result.failed == 0
    assert result.latency.count == report["requests"]
    assert result.seconds == pytest.approx(report["duration_us"] / 1e6)
    assert result.latency.max_ns == report["latency_us"]["max"] * 1000


def test_wrk_that_cannot_connect_fails_with_its_reason() -> None:
    text = (FIXTURES / "wrk_refused.txt").read_text()
    cfg = config("http", "http://h:1/", engine="native", duration=1)
    with pytest.raises(ToolFailed, match="unable to connect"):
        wrk.parse(execution("", text, returncode=1), cfg, Path("/tmp"))


def test_wrk_live_figures_need_the_request_size_line() -> None:
    parser = wrk.LiveParser(config("http", "http://h/", engine="native", duration=1))
    assert parser.feed("hpcansible-wrk-request-bytes 41") is None
    assert parser.request_bytes == 41


def test_pgbench_counts_from_its_report_and_latency_from_its_log(tmp_path: Path) -> None:
    for log in FIXTURES.glob("pgbench_log.*"):
        shutil.copy(log, tmp_path)
    stdout = (FIXTURES / "pgbench_stdout.txt").read_text()
    stderr = (FIXTURES / "pgbench_stderr.txt").read_text()
    cfg = config("postgres", "postgres://h:5432", duration=3, concurrency=4)
    result = pgbench.parse(execution(stdout, stderr), cfg, tmp_path)
    assert result.operations == 5239 and result.failed == 0
    assert result.seconds == pytest.approx(5239 / 1757.841924)
    assert result.latency.count == 100  # the fixture keeps 50 lines of each log
    assert result.series and sum(row["completed"] for row in result.series.values()) == 100
    assert result.details["transactions_per_s"] == 1757.841924


def test_pgbench_progress_line_is_a_live_sample() -> None:
    parser = pgbench.LiveParser(config("postgres", "postgres://h:5432", duration=3))
    sample = parser.feed("progress: 2.0 s, 1791.1 tps, lat 2.225 ms stddev 1.254, 0 failed")
    assert sample is not None and sample.throughput == 1791.1 and sample.latency_mean_ms == 2.225


def test_pgbench_password_goes_by_environment() -> None:
    cfg = config("postgres", "postgres://node3:5434/bench", password="pw", duration=5)
    invocation = pgbench.invocation(cfg, "pgbench", Path("/tmp"))
    assert "pw" not in invocation.argv and invocation.env == {"PGPASSWORD": "pw"}
    assert invocation.argv[-1] == "bench" and "-T" in invocation.argv


def test_sysbench_totals_and_histogram() -> None:
    text = (FIXTURES / "sysbench_oltp_read_write.txt").read_text()
    cfg = config("mysql", "mysql://h:3306", duration=3, concurrency=2)
    result = sysbench.parse(execution(text), cfg, Path("/tmp"))
    assert result.operations == 1162
    assert result.seconds == pytest.approx(1162 / 386.30)
    assert result.details["queries_per_s"] == 7747.70
    assert result.latency.count == sum(
        int(line.rsplit(None, 1)[1]) for line in text.splitlines() if " |" in line
    )
    assert result.latency.max_ns == pytest.approx(720.65e6)


def test_sysbench_password_goes_in_a_private_option_file(tmp_path: Path) -> None:
    cfg = config("mysql", "mysql://node1:3306", password="pw", duration=5)
    invocation = sysbench.invocation(cfg, "sysbench", tmp_path)
    assert not any(word.rsplit("=", 1)[-1] == "pw" for word in invocation.argv)
    options = tmp_path / sysbench.OPTIONS_FILE
    assert options.read_text() == "mysql-password=pw\n"
    assert options.stat().st_mode & 0o777 == 0o600


def test_sysbench_progress_line_is_a_live_sample() -> None:
    parser = sysbench.LiveParser(config("mysql", "mysql://h:3306", duration=3))
    line = (
        "[ 2s ] thds: 2 tps: 244.06 qps: 4886.14 (r/w/o: 3426.80/970.23/489.11) "
        "lat (ms,99%): 331.91 err/s: 1.00 reconn/s: 0.00"
    )
    sample = parser.feed(line)
    assert sample is not None and sample.throughput == 244.06 and sample.errors == 1.0
