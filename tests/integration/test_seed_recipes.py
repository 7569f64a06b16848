"""The seed origin's own recipe sets (recipes/seed/, issue 10) run unchanged through the six
steps on the testbed, and each client reports successful operations: Ollama (the stand-in),
Redis with the native redis-benchmark, its parametric sweep (reduced to two values per axis
with HPCANSIBLE_SWEEP_POINTS=2), Chroma, MySQL (served by MariaDB) and Postgres.

One session per set, shared by the tests of its class (class-scoped: it stops before the next
set starts, so that sessions never queue behind each other on the testbed's six cores);
stopping checks that no process of the session outlives its jobs. Each costs about a minute.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testbed_support import (
    PYTHON,
    RECIPES,
    http_json,
    read_record,
    run,
    session_jobs,
    stop_and_check,
    unique,
    wait_for_summary,
)

pytestmark = pytest.mark.testbed

SEED = RECIPES / "seed"
PROMETHEUS = str(SEED / "prometheus_with_cadvisor.yaml")
SESSION_TIMEOUT = 600
SETS = {
    "ollama": ("ollama_with_cadvisor.yaml", "ollama_benchmark.yaml"),
    "ollama_parametric": ("ollama_with_cadvisor.yaml", "ollama_parametric.yaml"),
    "redis": ("redis_with_cadvisor.yaml", "redis_benchmark.yaml"),
    "redis_parametric": ("redis_with_cadvisor.yaml", "redis_parametric.yaml"),
    "chroma": ("chroma_with_cadvisor.yaml", "chroma_benchmark.yaml"),
    "mysql": ("mysql_with_cadvisor.yaml", "mysql_benchmark.yaml"),
    "postgres": ("postgres_with_cadvisor.yaml", "postgres_benchmark.yaml"),
}
# Secret files the service roles keep (mode 0600), by service type.
SECRETS = {
    "redis": "service/redis/password",
    "mariadb": "service/mariadb/password",
    "postgres": "service/postgres/password",
    "chroma": "service/chroma/token",
}


def assert_six_steps_done(record: dict[str, Any]) -> None:
    """Every step done, every job running, every Prometheus target up, the tunnel printed
    (ports may be shifted clear of other sessions', so none is fixed here)."""
    assert record["status"] == "running", record.get("error")
    assert sorted(record["steps"]) == ["1", "2", "3", "4", "5", "6"]
    assert all(step["status"] == "done" for step in record["steps"].values())
    for role in ("service", "client", "prometheus"):
        assert record["jobs"][role]["state"] == "RUNNING", role
    assert record["jobs"]["client"]["node"] != record["jobs"]["service"]["node"]
    health = targets_health(record)
    assert health and all(state == "up" for state in health.values()), health
    assert record["tunnel_command"].startswith("ssh -N -L ")


def start_session(name: str, **env: str) -> Iterator[dict[str, Any]]:
    """`run SERVICE CLIENT PROMETHEUS` with the seed set, unchanged; the record while it runs."""
    service, client = SETS[name]
    session_id = unique(f"seed_{name}")
    done = run(
        [PYTHON, "-m", "hpcansible", "run", "--json", "--session-id", session_id,
         str(SEED / service), str(SEED / client), PROMETHEUS],
        timeout=SESSION_TIMEOUT,
        **env,
    )  # fmt: skip
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        record = json.loads(done.stdout)
        assert_six_steps_done(record)
        yield record
    finally:
        stop_and_check(session_id)


@pytest.fixture(scope="class")
def ollama(slurm_testbed) -> Iterator[dict[str, Any]]:
    yield from start_session("ollama")


@pytest.fixture(scope="class")
def ollama_parametric(slurm_testbed) -> Iterator[dict[str, Any]]:
    yield from start_session("ollama_parametric", HPCANSIBLE_SWEEP_POINTS="2")


@pytest.fixture(scope="class")
def redis(slurm_testbed) -> Iterator[dict[str, Any]]:
    yield from start_session("redis")


@pytest.fixture(scope="class")
def redis_parametric(slurm_testbed) -> Iterator[dict[str, Any]]:
    yield from start_session("redis_parametric", HPCANSIBLE_SWEEP_POINTS="2")


@pytest.fixture(scope="class")
def chroma(slurm_testbed) -> Iterator[dict[str, Any]]:
    yield from start_session("chroma")


@pytest.fixture(scope="class")
def mysql(slurm_testbed) -> Iterator[dict[str, Any]]:
    yield from start_session("mysql")


@pytest.fixture(scope="class")
def postgres(slurm_testbed) -> Iterator[dict[str, Any]]:
    yield from start_session("postgres")


def targets_health(record: dict[str, Any]) -> dict[str, str]:
    url = f"{record['prometheus']['url']}/api/v1/targets"
    targets = http_json(url, record=record)["data"]["activeTargets"]
    return {target["labels"]["job"]: target["health"] for target in targets}


def assert_secret_kept_private(record: dict[str, Any]) -> None:
    """The service's generated secret: in its 0600 file only, never in scontrol show job,
    the job scripts, the logs or session.json."""
    session_dir = Path(record["session_dir"])
    secret_file = session_dir / SECRETS[record["service"]["type"]]
    assert secret_file.stat().st_mode & 0o777 == 0o600
    secret = secret_file.read_text().strip()
    assert len(secret) >= 16
    for role, job in record["jobs"].items():
        shown = subprocess.run(
            ["scontrol", "show", "job", str(job["job_id"])], capture_output=True, text=True
        ).stdout
        assert secret not in shown, f"the {role} job shows the secret"
    for path in [session_dir / "session.json", *session_dir.glob("jobs/*"),
                 *session_dir.glob("logs/*")]:  # fmt: skip
        assert secret not in path.read_text(errors="replace"), path


# --- Ollama (the stand-in), the seed's GPU recipe --------------------------------------------


class TestOllama:
    """The seed's Ollama recipes (the stand-in), on the gpu partition."""

    @pytest.mark.slow
    def test_ollama_seed_set_answers(self, ollama):
        summary = wait_for_summary(ollama)
        assert summary["engine"]["name"] == "python"
        assert summary["requests"]["succeeded"] > 0 and summary["requests"]["failed"] == 0
        assert ollama["jobs"]["service"]["node"] == "node3"  # the one node with a gpu GRES


# --- Redis: redis-benchmark with the seed's parameters ---------------------------------------


class TestRedis:
    """The seed's Redis recipes: redis-benchmark with the seed's parameters."""

    def test_redis_seed_set_runs_redis_benchmark_with_its_parameters(self, redis):
        summary = wait_for_summary(redis)
        engine = summary["engine"]
        assert engine["name"] == "redis-benchmark" and engine["version"]
        flags = ("-n 20000", "-c 10", "-d 64", "-P 1", "-t ping,set,get", "-a @HPCANSIBLE_SECRET")
        for flag in flags:
            assert flag in engine["command"]
        assert set(summary["native"]["tests"]) == {"PING_INLINE", "PING_MBULK", "SET", "GET"}
        assert summary["requests"]["succeeded"] == 80000 and summary["requests"]["failed"] == 0
        assert summary["throughput"]["requests_per_s"] > 0
        assert summary["gate"]["timed_out"] is False

    def test_redis_client_metrics_reached_prometheus(self, redis):
        wait_for_summary(redis)
        query = urllib.parse.quote("max(hpcansible_bench_requests_total{outcome='success'})")
        url = f"{redis['prometheus']['url']}/api/v1/query?query={query}"
        deadline = time.monotonic() + 60  # the next scrape after the run (scrape_interval)
        while True:
            result = http_json(url, record=redis)["data"]["result"]
            counted = float(result[0]["value"][1]) if result else 0.0
            if counted >= 80000 or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert counted >= 80000  # at least the tool's total once the step has ended

    def test_redis_password_stays_private(self, redis):
        assert_secret_kept_private(redis)


class TestOllamaParametric:
    """The seed origin's parametric LLM recipe (issue 8): comma lists of concurrency, output
    tokens and prompt lengths as one sweep session, two values per axis; its report's sweep."""

    @pytest.mark.slow
    def test_the_parametric_recipe_runs_as_one_sweep_with_its_report(self, ollama_parametric):
        summary = wait_for_summary(ollama_parametric, timeout=480)
        sweep = summary["sweep"]
        assert sweep["axes"] == {
            "concurrency": [1, 2], "output_tokens": [50, 100], "input_tokens": [50, 100],
        }  # fmt: skip
        assert sweep["points_run"] == sweep["points_planned"] == 8
        assert "knee" in summary and "max_load_meeting_slo" in summary
        for point in summary["points"]:
            requests = point["summary"]["requests"]
            assert requests["succeeded"] == requests["total"] == 8, point["label"]
            assert point["summary"]["window"], point["label"]
        # Prometheus split the client's series by sweep point (the `step` label).
        query = urllib.parse.urlencode(
            {"query": "count by (step) (hpcansible_bench_requests_total)"}
        )
        url = f"{ollama_parametric['prometheus']['url']}/api/v1/query?{query}"
        labels = {point["label"] for point in summary["points"]}
        # The last point's series appear with the first scrape after it (the client lingers
        # for it): summary.json can be written up to one scrape interval (5 s) earlier.
        deadline = time.monotonic() + 20
        while True:
            steps = {
                item["metric"].get("step")
                for item in http_json(url, record=ollama_parametric)["data"]["result"]
            }
            if labels <= steps or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert labels <= steps, steps
        done = run([PYTHON, "-m", "hpcansible", "report", ollama_parametric["id"]], timeout=180)
        assert done.returncode == 0, done.stderr
        sweep_png = Path(ollama_parametric["session_dir"]) / "report_files" / "sweep.png"
        assert sweep_png.stat().st_size > 20_000  # axes, three panels, eight points each


class TestRedisParametric:
    """The parametric sweep, two values per axis."""

    @pytest.mark.slow
    def test_redis_parametric_seed_set_sweeps_each_axis(self, redis_parametric):
        summary = wait_for_summary(redis_parametric, timeout=420)
        sweep = summary["sweep"]
        assert sweep["axes"] == {
            "concurrency": [1, 10], "value_size": [64, 1024], "pipeline": [1, 8],
        }  # fmt: skip
        assert sweep["points_run"] == sweep["points_planned"] == 8
        for point in summary["points"]:
            assert point["summary"]["requests"]["succeeded"] == 20000, point["label"]
            assert point["summary"]["engine"]["name"] == "redis-benchmark"
        notes = " ".join(read_record(redis_parametric["id"])["notes"])
        assert "HPCANSIBLE_SWEEP_POINTS=2" in notes


# --- the databases -----------------------------------------------------------------------------


class TestChroma:
    """Chroma on the Python engine."""

    @pytest.mark.slow
    def test_chroma_seed_set_inserts_and_queries(self, chroma):
        summary = wait_for_summary(chroma)
        assert summary["api"] == "chroma" and summary["engine"]["name"] == "python"
        assert summary["requests"]["succeeded"] == 400 and summary["requests"]["failed"] == 0
        assert summary["target"]["dimensions"] == 128
        assert chroma["versions"]["service"].startswith("chroma 0.6")
        assert_secret_kept_private(chroma)


class TestMysql:
    """MySQL recipes, served by MariaDB, loaded by sysbench."""

    @pytest.mark.slow
    def test_mysql_seed_set_runs_sysbench_on_mariadb(self, mysql):
        assert mysql["service"]["type"] == "mariadb"
        assert mysql["versions"]["service"].startswith("mariadb 10.")
        summary = wait_for_summary(mysql)
        assert summary["engine"]["name"] == "sysbench"
        assert summary["requests"]["succeeded"] > 0 and summary["requests"]["failed"] == 0
        assert summary["native"]["queries_per_s"] > 0
        assert targets_health(mysql)["mysql-mysqld-exporter"] == "up"
        assert_secret_kept_private(mysql)


class TestPostgres:
    """Postgres loaded by pgbench."""

    @pytest.mark.slow
    def test_postgres_seed_set_runs_pgbench(self, postgres):
        summary = wait_for_summary(postgres)
        assert summary["engine"]["name"] == "pgbench"
        assert summary["requests"]["succeeded"] > 0 and summary["requests"]["failed"] == 0
        assert summary["latency_ms"]["e2e"]["count"] == summary["requests"]["succeeded"]
        assert targets_health(postgres)["postgres-postgres-exporter"] == "up"
        assert_secret_kept_private(postgres)


# --- a recipe written for another site ---------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "key", "what"),
    [
        ({"partition": "gpu-a100"}, "partition", "'gpu-a100' is not a partition of this site"),
        ({"partition": "gpu", "qos": "premium"}, "qos", "'premium' is not a QoS of this site"),
    ],
)
def test_a_name_the_site_lacks_is_refused_before_anything_is_submitted(
    slurm_testbed, tmp_path: Path, resources, key, what
) -> None:
    service = tmp_path / "ollama_with_cadvisor.yaml"
    service.write_text(
        json.dumps({"service": {"name": "ollama", "resources": resources, "ports": [11434]}})
    )
    for dry_run in ([], ["--dry-run"]):
        session_id = unique("seed_site_names")
        done = run(
            [PYTHON, "-m", "hpcansible", "run", *dry_run, "--session-id", session_id,
             str(service), str(SEED / "ollama_benchmark.yaml"), PROMETHEUS],
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr[-2000:]
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith(f"hpcansible: error: {service}: service.resources.{key}: {what}")
        assert "Traceback" not in done.stderr
        assert session_jobs(session_id) == []
