"""A compute node's client environment: the project without its `cli` extra, so no Ansible,
no ansible-runner, no CLI dependencies; and a session's client job runs from it (issue 9).

The benchmark_client role creates the venv itself (install method `venv`) from the wheels
`make client-wheels` builds, with pip --no-index: nothing comes from the network here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from testbed_support import (
    ROOT,
    read_record,
    recipe_set,
    session_playbook,
    unique,
    wait_for_summary,
)

pytestmark = pytest.mark.testbed

WHEELS = ROOT / "build" / "client-wheels"


def test_the_client_job_runs_from_an_environment_without_ansible(sessions, tmp_path: Path):
    assert any(WHEELS.glob("hpcansible-*.whl")), "run `make client-wheels` first"
    venv = tmp_path / "client-venv"
    session_id = unique("clientenv")
    sessions.append(session_id)
    done = session_playbook(
        session_id,
        recipe_set("redis"),
        benchmark_client_install_method="venv",
        benchmark_client_venv=str(venv),
        benchmark_client_source="hpcansible",
        benchmark_client_pip_extra_args=f"--no-index --find-links {WHEELS}",
    )
    assert done.returncode == 0, done.stdout[-4000:]
    python = venv / "bin" / "python"
    for module in ("ansible", "ansible_runner", "mitogen", "matplotlib"):
        probe = subprocess.run([python, "-c", f"import {module}"], capture_output=True, check=False)
        assert probe.returncode != 0, f"{module} is importable in the client's environment"
    record = read_record(session_id)
    script = Path(record["jobs"]["client"]["script"]).read_text()
    assert f"{python} -m hpcansible_jobs.bench" in script.replace("'", "")
    summary = wait_for_summary(record)
    assert summary["requests"]["succeeded"] > 0
