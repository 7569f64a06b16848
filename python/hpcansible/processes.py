"""Ending the helper processes the CLI starts (ssh tunnels, a local Prometheus)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

GRACE_S = 5.0


def end_process(process: subprocess.Popen, grace_s: float = GRACE_S) -> None:
    """SIGTERM, then SIGKILL when the process has not gone within the grace period.

    ssh does not act on SIGTERM while it is still connecting or when its parent left the
    signal ignored, and a CLI command must not hang on its own helper.
    """
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def end_pid(pid: int, grace_s: float = GRACE_S) -> None:
    """The same for a process this CLI did not start (a tunnel an earlier `run` left open)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def descendants(root: int | None = None) -> list[int]:
    """Every live process below `root` (default: this one), read from /proc."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _parent_of(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], list(children.get(root, []))
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, []))
    return [pid for pid in found if not _is_zombie(pid)]


def end_descendants(grace_s: float = GRACE_S) -> list[int]:
    """End what this process started and left behind (an ansible-playbook that a cancelled
    ansible-runner did not reap, and its workers): SIGTERM, then SIGKILL; their pids."""
    left = descendants()
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(pid) for pid in left):
        time.sleep(0.1)
    for pid in filter(_alive, left):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and not _is_zombie(pid)
