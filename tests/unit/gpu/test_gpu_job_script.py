"""The job script and the scrape targets of a GPU service, rendered from the real templates.

roles/session_job/templates/job.sbatch.j2 and playbooks/session/targets.yml.j2 are rendered with
Jinja2 and the collection's own filters (Ansible's quote and regex_replace are the shlex and re
calls they wrap), then the script goes through `bash -n`. The whole session in check mode is
tests/integration/test_gpu_session.py.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml
from ansible_collections.hpcansible.hpc.plugins.filter.shell import shell_path, shell_words
from ansible_collections.hpcansible.hpc.plugins.module_utils.gpu import asks_for_gpus

# The template's regex_replace("\s*\n\s*", ...) literal: Jinja's own decoding warns, Ansible's too.
pytestmark = pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")

PROJECT = Path(__file__).resolve().parents[3]
JOB_TEMPLATE = PROJECT / "roles" / "session_job" / "templates" / "job.sbatch.j2"
TARGETS_TEMPLATE = PROJECT / "playbooks" / "session" / "targets.yml.j2"
CADVISOR = 'cadvisor --port=8080 --listen_ip="${node_address}"'
GPU_EXPORTER = 'python3 -m hpcansible_jobs.gpu_exporter --address="${node_address}" --port=9400'


def environment() -> jinja2.Environment:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters.update(
        {
            "quote": lambda value: shlex.quote(str(value)),
            "regex_replace": lambda value, pattern, replacement: re.sub(
                pattern, replacement, str(value)
            ),
            "bool": lambda value: value if isinstance(value, bool) else str(value) in ("1", "true"),
            "hpcansible.hpc.shell_path": shell_path,
            "hpcansible.hpc.shell_words": shell_words,
            "hpcansible.hpc.asks_for_gpus": asks_for_gpus,
        }
    )
    return env


def job_script(spec: dict, resources: dict | None = None) -> str:
    template = environment().from_string(JOB_TEMPLATE.read_text())
    return template.render(
        hpcansible_session_id="g1",
        session_job_spec={"role": "service", "title": "t", **spec},
        session_job_resources=resources or {},
    )


def assert_bash_syntax(script: str, tmp_path: Path) -> None:
    path = tmp_path / "job.sbatch"
    path.write_text(script)
    done = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_sidecars_as_a_list_start_in_order_before_the_service(tmp_path):
    script = job_script({"sidecar": [CADVISOR, GPU_EXPORTER], "command": "serve"})
    lines = script.splitlines()
    assert lines.count("children+=($!)") == 2
    cadvisor, gpu, service = (
        lines.index(f"{CADVISOR} &"),
        lines.index(f"{GPU_EXPORTER} &"),
        lines.index("serve &"),
    )
    assert cadvisor < gpu < service
    assert_bash_syntax(script, tmp_path)


def test_a_single_sidecar_string_still_works(tmp_path):
    """Callers that pass one command (the cadvisor role's own exporter job) keep working."""
    script = job_script({"sidecar": CADVISOR, "command": "serve"})
    assert f"\n{CADVISOR} &\nchildren+=($!)\n" in script
    assert script.count("children+=($!)") == 1
    assert_bash_syntax(script, tmp_path)


@pytest.mark.parametrize("sidecar", [None, "", [], ["", ""]])
def test_no_sidecar_starts_nothing_before_the_service(tmp_path, sidecar):
    spec = {"command": "serve"} if sidecar is None else {"sidecar": sidecar, "command": "serve"}
    script = job_script(spec)
    assert "children+=($!)" not in script and "Monitoring sidecars" not in script
    assert_bash_syntax(script, tmp_path)


@pytest.mark.parametrize(
    ("resources", "gpu_flag", "nv"),
    [
        ({"partition": "gpu", "gres": "gpu:1"}, False, True),  # the GPU request implies --nv
        ({"gpus": "2"}, False, True),
        ({"partition": "gpu"}, False, False),  # no GPU asked for: no --nv
        ({}, True, True),  # the role's own gpu switch (ollama_service_gpu)
    ],
)
def test_apptainer_gets_nv_when_the_job_has_gpus(tmp_path, resources, gpu_flag, nv):
    spec = {
        "command": "ollama serve",
        "apptainer": {"image": "$HOME/ollama.sif", "gpu": gpu_flag, "args": ["--bind", "/x y"]},
    }
    script = job_script(spec, resources)
    prefix = "apptainer exec --nv --bind '/x y' " if nv else "apptainer exec --bind '/x y' "
    assert f'{prefix}"${{HOME}}"/ollama.sif ollama serve &' in script
    assert_bash_syntax(script, tmp_path)


def test_the_recipes_cuda_visible_devices_passes_through_as_written(tmp_path):
    script = job_script(
        {"environment": {"CUDA_VISIBLE_DEVICES": "1"}, "command": "serve"}, {"gres": "gpu:2"}
    )
    assert "export CUDA_VISIBLE_DEVICES=1\n" in script
    assert script.count("CUDA_VISIBLE_DEVICES") == 1  # nothing else touches SLURM's value
    assert_bash_syntax(script, tmp_path)


# --- scrape targets ----------------------------------------------------------------------------


def targets(service: dict) -> list[dict]:
    record = {
        "service": {
            "name": "llamacpp",
            "exporter": "cadvisor",
            "exporter_job": "llamacpp-cadvisor",
            "exporter_port": 8080,
            **service,
        },
        "jobs": {"service": {"node": "node3"}, "client": {"node": "node1"}},
        "client": {"name": "llm-client", "metrics_port": 9101},
    }
    rendered = environment().from_string(TARGETS_TEMPLATE.read_text())
    return yaml.safe_load(rendered.render(hpcansible_session_known=record))


def test_a_gpu_service_gets_its_service_gpu_target():
    found = targets(
        {"gpu_exporter": "nvml", "gpu_exporter_job": "llamacpp-gpu", "gpu_exporter_port": 9400}
    )
    assert [target["job"] for target in found] == [
        "llamacpp-cadvisor",
        "llamacpp-gpu",
        "llm-client",
    ]
    assert found[1] == {
        "job": "llamacpp-gpu",
        "targets": ["node3:9400"],
        "labels": {"role": "service", "service": "llamacpp", "exporter": "nvml"},
    }


@pytest.mark.parametrize("service", [{}, {"gpu_exporter": "none", "gpu_exporter_job": ""}])
def test_a_service_without_gpu_exporter_gets_no_gpu_target(service):
    assert [target["job"] for target in targets(service)] == ["llamacpp-cadvisor", "llm-client"]
