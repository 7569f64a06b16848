"""Session directories and their session.json, as the playbook writes them."""

from __future__ import annotations

import importlib
import json
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from hpcansible.errors import UserError
from hpcansible.paths import INVENTORY, PROJECT_ROOT, sessions_home

COLLECTIONS = PROJECT_ROOT / "collections"


def collection_module_utils(name: str = "recipes"):
    """A module of the collection's module_utils: the same code the playbooks run."""
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))
    return importlib.import_module(
        f"ansible_collections.hpcansible.hpc.plugins.module_utils.{name}"
    )


def new_session_id(service_name: str) -> str:
    """<service>_<UTC date>_<time>_<6 hex>: sortable, unique, a valid Ansible group name."""
    stem = "".join(c if c.isalnum() else "_" for c in service_name.lower()) or "session"
    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    return f"{stem}_{stamp}_{secrets.token_hex(3)}"


def profile_dir(profile: str) -> Path:
    """A site profile: a name under inventory/ or a path to an inventory folder."""
    candidate = Path(profile).expanduser()
    if not candidate.is_dir():
        candidate = INVENTORY / profile
    if not candidate.is_dir():
        known = ", ".join(sorted(p.name for p in INVENTORY.iterdir() if p.is_dir()))
        raise UserError(f"--profile {profile}: no such site profile (known: {known})")
    return candidate.resolve()


def default_recipes(profile: Path) -> dict[str, Path]:
    """The profile's hpcansible_default_recipes, read the way the playbook reads them."""
    group_vars = profile / "group_vars"
    files = [group_vars / "all.yml", *sorted((group_vars / "all").glob("*.yml"))]
    defaults: dict = {}
    for path in files:
        try:
            settings = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        defaults.update(settings.get("hpcansible_default_recipes", {}))
    return {
        kind: Path(str(path).replace("{{ inventory_dir }}", str(profile))).resolve()
        for kind, path in defaults.items()
    }


def session_dir(session_id: str) -> Path:
    return sessions_home() / session_id


def read_session(session_id: str) -> dict[str, Any]:
    path = session_dir(session_id) / "session.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"session {session_id}: no {path}") from None
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error.msg})") from None


def list_sessions() -> list[dict[str, Any]]:
    """Every session with a session.json, newest first."""
    home = sessions_home()
    records = []
    for path in home.glob("*/session.json") if home.is_dir() else []:
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            records.append({"id": path.parent.name, "status": "unreadable"})
    return sorted(records, key=lambda record: record.get("created", ""), reverse=True)
