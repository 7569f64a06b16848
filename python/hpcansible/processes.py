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
