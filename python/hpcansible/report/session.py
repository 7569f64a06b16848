"""Which session a command means: an id, a session directory, or a results directory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpcansible.errors import UserError
from hpcansible.paths import sessions_home
from hpcansible.stop import ACTIVE


@dataclass(frozen=True)
class SessionRef:
    """A session's record (empty for a bare results directory) and where its files are."""

    id: str
    directory: Path  # where the report goes
    results_dir: Path
    record: dict[str, Any]

    @property
    def active(self) -> bool:
        """The jobs may still run: the live Prometheus is the one to ask."""
        return self.record.get("status") in ACTIVE


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: unreadable ({error})") from None
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def results_dir_of(record: dict[str, Any], directory: Path) -> Path:
    """The record's results_dir where it exists here, else <session dir>/results (the local
    mirror of a session run over SSH keeps its own copy there)."""
    recorded = record.get("results_dir")
    if recorded and Path(recorded).is_dir():
        return Path(recorded)
    return directory / "results"


def resolve_session(name: str) -> SessionRef:
    """An id under the sessions home, a session directory, or a results directory."""
    path = Path(name).expanduser()
    if path.is_dir() and (path / "session.json").is_file():
        return _from_directory(path.resolve())
    if path.is_dir() and (path / "summary.json").is_file():
        path = path.resolve()
        if (path.parent / "session.json").is_file():
            session = _from_directory(path.parent)
            return SessionRef(session.id, session.directory, path, session.record)
        return SessionRef(path.name, path, path, {})
    candidate = sessions_home() / name
    if "/" not in name and (candidate / "session.json").is_file():
        return _from_directory(candidate)
    if path.is_dir():
        raise UserError(
            f"{path}: neither a session directory (session.json) nor results (summary.json)"
        )
    if "/" in name:
        raise UserError(f"{path}: no such directory")
    raise UserError(f"session {name}: unknown (no {candidate / 'session.json'})")


def _from_directory(directory: Path) -> SessionRef:
    record = read_json(directory / "session.json")
    return SessionRef(
        str(record.get("id") or directory.name),
        directory,
        results_dir_of(record, directory),
        record,
    )
