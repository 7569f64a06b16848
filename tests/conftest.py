"""Shared test setup: the collection is importable as ansible_collections.hpcansible.hpc."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS = PROJECT_ROOT / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))


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
