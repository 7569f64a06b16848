"""Shared test setup: the collection is importable as ansible_collections.hpcansible.hpc, through
Ansible's own collection loader, as in the CLI (hpcansible.sessions.install_collection_loader)
and in Ansible itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hpcansible.sessions import install_collection_loader

PROJECT_ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS = PROJECT_ROOT / "collections"
install_collection_loader()


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def slurm_testbed() -> None:
    """The real SLURM testbed must be up: `make test` brings it up; a missing one is a failure."""
    done = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, check=False)
    if done.returncode != 0 or "UP" not in done.stdout:
        pytest.fail(
            "the SLURM testbed is not up: run `python -m hpcansible testbed up` "
            f"({(done.stderr or done.stdout).strip()})"
        )
