"""Helpers shared by the testbed integration tests: commands with the checkout's venv first."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")


def environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    for name in ("HPCANSIBLE_SESSION", "HPCANSIBLE_LOGIN_HOST", "HPCANSIBLE_LOGIN_PORT"):
        env.pop(name, None)
    env.update(extra)
    return env


def run(argv: list[str], timeout: float = 60, **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv,
        cwd=ROOT,
        env=environment(**extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def squeue_lines() -> list[str]:
    done = run(["squeue", "-h", "-o", "%i|%j|%T|%r|%k"])
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()
