"""Session directories and their session.json, as the playbook writes them."""

from __future__ import annotations

import fcntl
import functools
import importlib
import json
from pathlib import Path
from typing import IO, Any

import yaml

from hpcansible.errors import UserError
from hpcansible.paths import INVENTORY, PROJECT_ROOT, sessions_home

COLLECTIONS = PROJECT_ROOT / "collections"


@functools.cache
def install_collection_loader() -> None:
    """Make `ansible_collections.*` importable the way Ansible itself does: its collection
    loader, over its configured collections paths with this checkout's collections/ first."""
    from ansible.plugins.loader import init_plugin_loader

    init_plugin_loader([str(COLLECTIONS)])


def collection_module_utils(name: str = "recipes"):
    """A module of the collection's module_utils: the same code the playbooks run."""
    install_collection_loader()
    return importlib.import_module(
        f"ansible_collections.hpcansible.hpc.plugins.module_utils.{name}"
    )


def session_record_module():
    """The collection's session.json code: its schema, merge and atomic write."""
    return collection_module_utils("session_record")


def new_session_id(service_name: str) -> str:
    """The playbook's naming rule (module_utils/session_record.py)."""
    return session_record_module().new_session_id(service_name)


def claim_session(session_id: str) -> IO[str]:
    """Hold the session's lock for this process's life, or refuse in one line: while another
    `run` holds it, or when a session of this id exists already (unless it was a dry run)."""
    directory = session_dir(session_id)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = open(directory / ".lock", "a")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise UserError(f"session {session_id}: another `run` is starting it right now") from None
    module = session_record_module()
    reason = module.taken_reason(module.read_record(directory), session_id)
    if reason:
        lock.close()
        raise UserError(reason)
    return lock


def update_record(directory: Path, changes: dict[str, Any]) -> dict[str, Any]:
    """Merge changes into a session.json and write it atomically: the playbooks' one writer."""
    return session_record_module().update_record(directory, changes)


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
    """A session's folder; an id that could leave the sessions folder is a user error."""
    try:
        session_record_module().check_session_id(session_id)
    except ValueError as error:
        raise UserError(str(error)) from None
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
