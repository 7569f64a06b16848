"""Where the project's files live: the package sits in <root>/python/hpcansible."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = PROJECT_ROOT / "playbooks"
INVENTORY = PROJECT_ROOT / "inventory"
ANSIBLE_CFG = PROJECT_ROOT / "ansible.cfg"


def venv_bin() -> Path:
    """The folder of the running interpreter, put first on PATH for ansible-playbook."""
    return Path(sys.executable).parent


def sessions_home() -> Path:
    """Session directories live on the shared filesystem so that jobs can write into them."""
    return Path(os.environ.get("HPCANSIBLE_HOME", Path.home() / "hpcansible")) / "sessions"
