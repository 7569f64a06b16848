"""GPU services on the testbed (issue 11): node3 has a countable gpu GRES (partition gpu) but no
GPU, so a GPU session goes through its six steps with the GPU exporter saying "no GPU visible".

- `run --dry-run` with the llama.cpp GPU recipe renders the GPU exporter sidecar, the --gres
  option and the llamacpp-gpu target, and submits nothing;
- the Ollama GPU recipe in check mode, with an Apptainer image and the site's dcgm-exporter,
  gets --nv from the GPU request alone, --gpus and the dcgm-exporter command line;
- a real session of the llama.cpp GPU recipe: the GPU target is up in Prometheus and serves
  hpcansible_gpu_visible 0 with the reason, and the service sees SLURM's CUDA_VISIBLE_DEVICES.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml
from hpcansible.prometheus_http import api_json
from testbed_support import (
    PYTHON,
    ROOT,
    SESSIONS,
    job_processes,
    read_record,
    recipe_set,
    run,
    session_jobs,
    session_playbook,
    stop,
    unique,
)

pytestmark = pytest.mark.testbed

SESSION_TIMEOUT = 600
LLAMACPP_GPU = [str(ROOT / "recipes" / "llamacpp" / "service-gpu.yml"), *recipe_set("llamacpp")[1:]]


def bash_syntax_ok(script: Path) -> None:
    done = run(["bash", "-n", str(script)])
    assert done.returncode == 0, done.stderr


def test_dry_run_renders_the_gpu_exporter_the_gres_and_the_gpu_target(sessions):
    session_id = unique("gpu_dry")
    sessions.append(session_id)
    command = [PYTHON, "-m", "hpcansible", "run", "--dry-run", "--json", "--session-id"]
    done = run([*command, session_id, *LLAMACPP_GPU], timeout=SESSION_TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert session_jobs(session_id) == []
    record = json.loads(done.stdout)
    service = record["service"]
    port = service["gpu_exporter_port"]
    assert (service["gpus"], service["gpu_exporter"]) == (1, "nvml")
    assert service["gpu_exporter_job"] == "llamacpp-gpu"
    assert 9400 <= port < 9400 + 1000  # shifted clear of other sessions' ports
    sbatch = record["jobs"]["service"]["sbatch"]
    assert "--gres=gpu:1" in sbatch and "--partition=gpu" in sbatch
    assert f"ports={service['port']},{service['exporter_port']},{port}" in " ".join(sbatch)
    directory = SESSIONS / session_id
    script = directory / "jobs" / "service.sbatch"
    text = script.read_text()
    exporter = f'-m hpcansible_jobs.gpu_exporter --address="${{node_address}}" --port={port} &'
    assert exporter in text
    assert text.index("cadvisor-standin") < text.index(exporter) < text.index("llama_cpp.server")
    assert "--n_gpu_layers -1" in text
    assert "CUDA_VISIBLE_DEVICES" not in text  # SLURM's value is left alone
    bash_syntax_ok(script)
    config = yaml.safe_load((directory / "prometheus" / "prometheus.yml").read_text())
    assert "llamacpp-gpu" in [job["job_name"] for job in config["scrape_configs"]]
    target = yaml.safe_load((directory / "prometheus" / "targets" / "llamacpp-gpu.yml").read_text())
    assert target[0]["targets"] == [f"<service-node>:{port}"]
    assert target[0]["labels"]["exporter"] == "nvml"


def test_check_mode_apptainer_gets_nv_and_the_site_dcgm_exporter_runs(sessions, tmp_path):
    """What a GPU cluster with dcgm-exporter gets: rendered and checked, not submitted."""
    service = tmp_path / "service.yml"
    service.write_text(
        yaml.safe_dump(
            {
                "service": {
                    "name": "ollama",
                    "type": "ollama",
                    "model": "gemma3:270m",
                    "resources": {"partition": "gpu", "gpus": 1},
                    "environment": {"CUDA_VISIBLE_DEVICES": "0"},
                }
            }
        )
    )
    session_id = unique("gpu_dcgm")
    sessions.append(session_id)
    recipes = [str(service), *recipe_set("ollama")[1:]]
    done = session_playbook(
        session_id,
        recipes,
        check=True,
        timeout=SESSION_TIMEOUT,
        hpcansible_site_programs=[],
        ollama_service_install_method="apptainer",
        ollama_service_apptainer_image="$HOME/containers/ollama.sif",
        cadvisor_dcgm_exporter_binary="$HOME/dcgm/bin/dcgm-exporter",
        cadvisor_dcgm_exporter_hpc_job_mapping_dir="/run/dcgm-job-map",
    )
    assert done.returncode == 0, done.stdout[-4000:]
    assert session_jobs(session_id) == []
    record = read_record(session_id)
    service_record = record["service"]
    assert service_record["gpu_exporter"] == "dcgm_exporter"
    assert "--gpus=1" in record["jobs"]["service"]["sbatch"]
    script = SESSIONS / session_id / "jobs" / "service.sbatch"
    text = script.read_text()
    port = service_record["gpu_exporter_port"]
    assert (
        # quoted only where the shell needs it: $HOME expands, the rest is one word
        f'"${{HOME}}"/dcgm/bin/dcgm-exporter --address="${{node_address}}":{port}  '
        "--hpc-job-mapping-dir=/run/dcgm-job-map &"
    ) in text
    # --nv comes from the GPU request alone (ollama_service_gpu is false here).
    assert 'apptainer exec --nv "${HOME}"/containers/ollama.sif ollama serve &' in text
    assert "export CUDA_VISIBLE_DEVICES=0\n" in text  # the recipe's value, as it says
    bash_syntax_ok(script)


def stop_and_check(session_id: str) -> None:
    """Stop the session; nothing of it may outlive its jobs (as the sessions fixture checks)."""
    record = read_record(session_id)
    job_ids = [str(job["job_id"]) for job in record.get("jobs", {}).values() if job.get("job_id")]
    stop(session_id)
    assert session_jobs(session_id) == []
    deadline = time.monotonic() + 15
    while job_processes(job_ids) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert job_processes(job_ids) == [], f"processes of session {session_id} outlived its jobs"


@pytest.fixture(scope="module")
def gpu_session(slurm_testbed):
    """One real session of the llama.cpp GPU recipe, stopped at the end of the module."""
    session_id = unique("gpu_llamacpp")
    done = run(
        [PYTHON, "-m", "hpcansible", "run", "--json", "--session-id", session_id, *LLAMACPP_GPU],
        timeout=SESSION_TIMEOUT,
    )
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        yield json.loads(done.stdout)
    finally:
        stop_and_check(session_id)


def prometheus_query(record: dict, query: str) -> list[dict]:
    path = f"/api/v1/query?query={urllib.parse.quote(query)}"
    deadline = time.monotonic() + 30
    while True:
        result = api_json(record, path)["data"]["result"]
        if result or time.monotonic() > deadline:
            return result
        time.sleep(1)


@pytest.mark.slow
def test_gpu_session_goes_on_without_a_gpu_and_says_so(gpu_session):
    record = gpu_session
    assert record["status"] == "running", record.get("error")
    assert all(step["status"] == "done" for step in record["steps"].values())
    assert sorted(record["steps"]) == ["1", "2", "3", "4", "5", "6"]
    service = record["service"]
    assert record["jobs"]["service"]["node"] == "node3"  # the gpu partition's node
    targets = api_json(record, "/api/v1/targets")["data"]["activeTargets"]
    health = {target["labels"]["job"]: target["health"] for target in targets}
    assert health.get("llamacpp-gpu") == "up", health
    assert health.get(service["exporter_job"]) == "up", health
    (visible,) = prometheus_query(record, 'hpcansible_gpu_visible{job="llamacpp-gpu"}')
    assert visible["value"][1] == "0"
    assert visible["metric"]["hpc_job"] == str(record["jobs"]["service"]["job_id"])
    assert visible["metric"]["Hostname"] == "node3"
    assert visible["metric"]["reason"].startswith("NVML init failed"), visible["metric"]
    log = Path(record["jobs"]["service"]["log"]).read_text()
    assert log.count("hpcansible-gpu-exporter: no GPU visible (NVML init failed") == 1, log


@pytest.mark.slow
def test_the_gpu_service_sees_the_gpu_slurm_gave_it(gpu_session):
    job_id = str(gpu_session["jobs"]["service"]["job_id"])
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            variables = dict(
                item.split("=", 1) for item in environ.read_text().split("\0") if "=" in item
            )
            command = (environ.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if variables.get("SLURM_JOB_ID") == job_id and b"llama_cpp.server" in command:
            # SLURM's own value for the one gpu of node3; the job script does not set it.
            assert variables.get("CUDA_VISIBLE_DEVICES") == "0", variables
            return
    pytest.fail(f"no llama_cpp.server process of job {job_id}")
