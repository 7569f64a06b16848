# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""A session's files written in place: atomically, with their mode, checked before they land.

One rule for the two places a session's files are written: in-process on the controller when
SLURM's host is this machine (`write_file`), and as one shell command on SLURM's host when it
is reached over SSH (`remote_script`). Both write through a temporary file in the destination's
folder, so a reader never sees half a file, and both run the file's check (`promtool check
config %s`) on that temporary file before it is renamed into place.
"""

from __future__ import annotations

import base64
import os
import shlex
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


@dataclass(frozen=True)
class SessionFile:
    """One file to write: its bytes, its mode, and an optional check (a command with %s)."""

    dest: str
    data: bytes
    mode: int = FILE_MODE
    validate: str = ""


class ValidationFailed(Exception):
    """A file's check refused it: the file was not written."""


def parse_mode(value: object, default: int) -> int:
    """A mode given as "0600", 0o600 or 384, as an int; empty means the default."""
    if value in (None, ""):
        return default
    if isinstance(value, int):
        return value
    text = str(value).strip()
    try:
        return int(text, 8)
    except ValueError as error:
        raise ValueError(f"mode {text!r} is not an octal mode such as 0600") from error


def check_command(validate: str, path: str) -> list[str]:
    """The check's argv for the file at `path` (the %s), split as Ansible's validate does."""
    if "%s" not in validate:
        raise ValueError(f"validate {validate!r} must contain %s for the file to check")
    return shlex.split(validate.replace("%s", shlex.quote(path)))


def make_folders(folders: Iterable[str], mode: int = FOLDER_MODE) -> bool:
    """Create the folders (and their parents) with `mode`; True when one was created or fixed."""
    changed = False
    for folder in folders:
        path = Path(folder)
        if not path.is_dir():
            path.mkdir(parents=True, exist_ok=True, mode=mode)
            changed = True
        if path.stat().st_mode & 0o7777 != mode:
            os.chmod(path, mode)
            changed = True
    return changed


def unchanged(item: SessionFile) -> bool:
    """The file is there already with these bytes and this mode."""
    path = Path(item.dest)
    try:
        return path.stat().st_mode & 0o7777 == item.mode and path.read_bytes() == item.data
    except OSError:
        return False


def replace_atomically(path: Path, data: bytes, mode: int, validate: str = "") -> None:
    """Write through a temporary file in the same folder, synced, with its mode, checked by
    `validate` and renamed into place: a reader never sees half a file, two writers never
    interleave, and a refused file never lands. session.json is written this way too."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        if validate:
            done = subprocess.run(
                check_command(validate, temporary), capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                said = (done.stderr or done.stdout).strip().replace(temporary, str(path))
                raise ValidationFailed(f"{path}: refused by '{validate}': {said}")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_file(item: SessionFile) -> bool:
    """Write one file in place unless it is unchanged; True when it was written."""
    if unchanged(item):
        return False
    replace_atomically(Path(item.dest), item.data, item.mode, item.validate)
    return True


def remote_script(folders: Iterable[str], files: Iterable[SessionFile]) -> str:
    """One shell command that does on SLURM's host what make_folders and write_file do here.

    Every path and byte is quoted or base64: nothing in a file reaches the shell as code.
    """
    lines = ["set -e", "umask 077"]
    folders = list(folders)
    if folders:
        quoted = " ".join(shlex.quote(folder) for folder in folders)
        lines += [f"mkdir -p -- {quoted}", f"chmod {FOLDER_MODE:o} -- {quoted}"]
    for item in files:
        dest = shlex.quote(item.dest)
        payload = base64.b64encode(item.data).decode()
        lines += [
            f'mkdir -p -- "$(dirname -- {dest})"',
            f't=$(mktemp "$(dirname -- {dest})/.hpcansible.XXXXXX")',
            f'printf %s {payload} | base64 -d > "$t"',
            f'chmod {item.mode:o} "$t"',
        ]
        if item.validate:
            # the check's words quoted one by one; the file is the shell's "$t"
            argv = " ".join(shlex.quote(word) for word in check_command(item.validate, "@FILE@"))
            check = argv.replace("@FILE@", '"$t"')
            lines.append(f'{check} >&2 || {{ rm -f "$t"; echo {dest}: refused >&2; exit 3; }}')
        lines.append(f'mv -f "$t" {dest}')
    return "\n".join(lines)
