"""Whole sessions on the testbed: the six steps through both entry points, and each failure
row of DESIGN.md's table injected for real.

Every session started here is stopped afterwards (playbooks/teardown.yml), and the tests check
that no process of a stopped session outlives its jobs.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hpcansible.processes import end_process
from testbed_support import (
    PYTHON,
    ROOT,
    SESSIONS,
    free_port,
    http_json,
    read_record,
    recipe_set,
    run,
    session_job_states,
    session_jobs,
    session_playbook,
    squeue_lines,
    unique,
    wait_for_summary,
)

pytestmark = pytest.mark.testbed

SESSION_TIMEOUT = 600


def cli_run(sessions: list[str], *args: str, session_id: str) -> subprocess.CompletedProcess:
    sessions.append(session_id)
    return run(
        [PYTHON, "-m", "hpcansible", "run", "--json", "--session-id", session_id, *args],
        timeout=SESSION_TIMEOUT,
    )


def playbook_run(
    sessions: list[str], session_id: str, recipes: list[str] | None = None, **extra: Any
) -> subprocess.CompletedProcess:
    sessions.append(session_id)
    variables: dict[str, Any] = {"hpcansible_session_id": session_id, **extra}
    if recipes:
        variables["hpcansible_recipes"] = dict(
            zip(("service", "client", "prometheus"), recipes, strict=True)
        )
    return run(
        ["ansible-playbook", str(ROOT / "playbooks" / "session.yml"), "-e", json.dumps(variables)],
        timeout=SESSION_TIMEOUT,
    )


def assert_session_complete(record: dict[str, Any]) -> None:
    assert record["status"] == "running", record.get("error")
    assert sorted(record["steps"]) == ["1", "2", "3", "4", "5", "6"]
    assert all(step["status"] == "done" for step in record["steps"].values())
    for role in ("service", "client", "prometheus"):
        assert record["jobs"][role]["state"] == "RUNNING", role
        assert record["jobs"][role]["node"].startswith("node"), role
    assert record["jobs"]["client"]["node"] != record["jobs"]["service"]["node"]
    service = record["service"]
    assert record["service_endpoint"].endswith(
        f"{record['jobs']['service']['node']}:{service['port']}"
    )
    targets = http_json(f"{record['prometheus']['url']}/api/v1/targets", record=record)["data"][
        "activeTargets"
    ]
    health = {target["labels"]["job"]: target["health"] for target in targets}
    assert health.get(record["client"]["name"]) == "up", health
    if service["exporter"] != "none":
        assert health.get(service["exporter_job"]) == "up", health
    assert record["tunnel_command"].startswith(
        f"ssh -N -L 9090:{record['jobs']['prometheus']['node']}:9090 -p 8822 "
    )
    # what the roles returned, recorded by session.yml at each step's end (issue 9)
    assert any(char.isdigit() for char in record["versions"]["service"]), record["versions"]
    assert record["client"]["metrics_url"].startswith(f"http://{record['jobs']['client']['node']}:")
    assert len(record["prometheus"]["targets"]) >= 2, record["prometheus"]
    assert record["gate"]["released_at"], record["gate"]


def assert_tunnel_reaches_prometheus(record: dict[str, Any]) -> None:
    """Run the printed tunnel command (on a free local port) through the login node."""
    port = free_port()
    command = record["tunnel_command"].replace("-L 9090:", f"-L 127.0.0.1:{port}:", 1).split()
    tunnel = subprocess.Popen(
        [command[0], "-o", "ExitOnForwardFailure=yes", "-o", "BatchMode=yes", *command[1:]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = http_json(
                    f"http://127.0.0.1:{port}/api/v1/targets", timeout=3, record=record
                )
                break
            except OSError as error:
                assert tunnel.poll() is None, tunnel.stderr.read().decode()
                assert time.monotonic() < deadline, f"the tunnel never answered: {error}"
                time.sleep(0.3)
        assert answer["status"] == "success"
    finally:
        end_process(tunnel)


# --- complete sessions ---------------------------------------------------------------------


def test_cli_default_session_runs_real_llm_end_to_end(sessions):
    session_id = unique("default")
    done = cli_run(sessions, session_id=session_id)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(done.stdout)
    assert record == read_record(session_id)
    assert record["service"]["type"] == "llamacpp"
    assert_session_complete(record)
    for line in ("[1/6]", "[6/6]"):
        assert line in done.stderr
    assert_tunnel_reaches_prometheus(record)
    summary = wait_for_summary(record)
    assert summary["requests"]["succeeded"] > 0
    assert summary["requests"]["failed"] == 0
    assert summary["tokens"]["output_total"] > 0


@pytest.mark.parametrize("recipes", ["redis", "ollama"])
def test_playbook_runs_each_shipped_recipe_set(sessions, recipes):
    session_id = unique(f"play_{recipes}")
    done = playbook_run(sessions, session_id, recipe_set(recipes))
    assert done.returncode == 0, done.stdout[-4000:]
    record = read_record(session_id)
    assert_session_complete(record)
    assert "Open the tunnel on your machine:  ssh -N -L 9090:" in done.stdout
    assert "If SSH port forwarding is not allowed" in done.stdout  # step 6's manual alternative
    assert wait_for_summary(record)["requests"]["succeeded"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("recipes", ["seed", "llamacpp"])
def test_cli_runs_the_other_recipe_sets(sessions, recipes):
    done = cli_run(sessions, *recipe_set(recipes), session_id=unique(f"cli_{recipes}"))
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(done.stdout)
    assert_session_complete(record)
    assert wait_for_summary(record)["requests"]["succeeded"] > 0


# --- the failure table: each row injected ---------------------------------------------------


def write_recipe(tmp_path: Path, name: str, document: dict) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return str(path)


def ollama_recipes(tmp_path: Path, **service: Any) -> list[str]:
    body = {"name": "ollama", "type": "ollama", "model": "gemma3:270m", **service}
    recipes = recipe_set("ollama")
    recipes[0] = write_recipe(tmp_path, "service.yml", {"service": body})
    return recipes


def test_recipe_error_names_file_and_key_and_submits_nothing(sessions, tmp_path):
    bad = write_recipe(tmp_path, "service.yml", {"service": {"name": "ollama", "resourcs": {}}})
    before = len(squeue_lines())
    done = run([PYTHON, "-m", "hpcansible", "run", bad, *recipe_set("ollama")[1:]], timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"hpcansible: error: {bad}: service.resourcs: unknown key (did you mean 'resources'?)"
    )
    assert "Traceback" not in done.stderr
    assert len(squeue_lines()) == before


def test_step1_sbatch_rejection_stops_with_slurms_error(sessions, tmp_path):
    # A partition the site lacks is refused before step 1 (test_seed_recipes.py); an unknown
    # GRES only sbatch refuses.
    recipes = ollama_recipes(tmp_path, resources={"gres": "nosuchgres:1"})
    session_id = unique("fail1")
    done = playbook_run(sessions, session_id, recipes)
    assert done.returncode != 0
    assert (
        "[1/6] start service failed: sbatch: Invalid generic resource (gres) specification"
        in done.stdout
    )
    record = read_record(session_id)
    assert record["status"] == "failed" and record["failed_step"] == 1
    assert session_jobs(session_id) == []


def test_step2_pending_service_says_why_and_what_to_do(sessions, tmp_path):
    recipes = ollama_recipes(tmp_path, resources={"cpus_per_task": 64})
    session_id = unique("fail2")
    done = playbook_run(sessions, session_id, recipes, ollama_service_start_timeout=5)
    assert done.returncode != 0
    assert "[2/6] detect service failed:" in done.stdout
    assert "still PENDING after 5 s: reason PartitionConfig" in done.stdout
    assert f"squeue -j {read_record(session_id)['jobs']['service']['job_id']}" in done.stdout
    assert read_record(session_id)["failed_step"] == 2


def test_step2_service_that_dies_shows_its_log_tail(sessions, tmp_path):
    recipes = ollama_recipes(tmp_path)
    session_id = unique("fail2b")
    done = playbook_run(
        sessions, session_id, recipes, ollama_service_binary="/bin/false", cadvisor_exporter="none"
    )
    assert done.returncode != 0
    assert "[2/6] detect service failed:" in done.stdout
    assert "FAILED" in done.stdout and "last lines of" in done.stdout
    assert "hpcansible: service exited with status 1" in done.stdout


def test_step3_client_failure_keeps_the_service_running(sessions, tmp_path):
    session_id = unique("fail3")
    done = playbook_run(
        sessions, session_id, recipe_set("ollama"), benchmark_client_python="/nonexistent/python"
    )
    assert done.returncode != 0
    assert "[3/6] start client failed:" in done.stdout
    record = read_record(session_id)
    assert record["failed_step"] == 3
    assert session_job_states(session_id)["service"] == "RUNNING"
    assert http_json(f"{record['service_endpoint']}/api/version")["version"]


@pytest.mark.slow
def test_step4_bad_prometheus_config_is_refused_before_anything_is_submitted(sessions, tmp_path):
    """What promtool would refuse at step 4 is refused at step 0 already (the recipe's scrape
    configs are checked key by key, then by promtool): step 4 cannot fail once validated."""
    recipes = recipe_set("ollama")
    recipes[2] = write_recipe(
        tmp_path,
        "prometheus.yml",
        {"prometheus": {"extra_scrape_configs": [{"job_name": "x", "scrape_interval": "often"}]}},
    )
    session_id = unique("fail4")
    done = playbook_run(sessions, session_id, recipes)
    assert done.returncode != 0
    assert "extra_scrape_configs[0].scrape_interval" in done.stdout, done.stdout[-3000:]
    assert "[1/6]" not in done.stdout
    assert session_job_states(session_id) == {}


def test_step5_prometheus_failure_keeps_service_and_client(sessions, tmp_path):
    recipes = recipe_set("ollama")
    recipes[2] = write_recipe(
        tmp_path,
        "prometheus.yml",
        {
            "prometheus": {
                "monitoring_targets": [{"host": "node3", "port": 1, "job_name": "nothing"}]
            }
        },
    )
    session_id = unique("fail5")
    done = playbook_run(sessions, session_id, recipes, prometheus_targets_timeout=10)
    assert done.returncode != 0
    assert "[5/6] start prometheus failed: Prometheus targets not up after 10 s:" in done.stdout
    assert "nothing http://node3:1/metrics is down" in done.stdout
    states = session_job_states(session_id)
    assert states["service"] == "RUNNING" and states["client"] == "RUNNING"


def test_dry_run_renders_apptainer_gpu_and_module_launchers_quoted(sessions, tmp_path):
    """What a cluster without stand-ins gets: the job scripts, rendered and checked, unsent."""
    recipes = ollama_recipes(
        tmp_path, environment={"EVIL": "x; rm -rf ~ $(touch /tmp/hpcansible-pwned)"}
    )
    session_id = unique("render")
    sessions.append(session_id)
    done = session_playbook(
        session_id,
        recipes,
        check=True,
        timeout=SESSION_TIMEOUT,
        hpcansible_site_programs=[],
        ollama_service_install_method="apptainer",
        ollama_service_apptainer_image="$HOME/containers/ollama latest.sif",
        ollama_service_gpu=True,
        cadvisor_install_method="module",
        cadvisor_module="cadvisor/0.49.1",
    )
    assert done.returncode == 0, done.stdout[-4000:]
    assert session_jobs(session_id) == []
    script = (SESSIONS / session_id / "jobs" / "service.sbatch").read_text()
    image = "\"${HOME}\"'/containers/ollama latest.sif'"
    assert f"apptainer exec --nv {image} ollama serve &" in script
    assert "module load cadvisor/0.49.1" in script
    assert 'cadvisor --port=8080 --listen_ip="${node_address}"' in script
    assert "export EVIL='x; rm -rf ~ $(touch /tmp/hpcansible-pwned)'" in script
    syntax = run(["bash", "-n", str(SESSIONS / session_id / "jobs" / "service.sbatch")])
    assert syntax.returncode == 0, syntax.stderr
    assert not Path("/tmp/hpcansible-pwned").exists()
