"""Helpers for the stand-in tests: free loopback ports and stand-ins run as real processes.

Imported by the test modules (pytest puts this rootless test directory on sys.path).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(url: str, process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"stand-in exited early with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"stand-in did not serve {url} within {timeout}s")


@contextmanager
def standin_process(
    module: str, arguments: Sequence[str], ready_url: str, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `python -m <module> <arguments>` until the block ends; always reaped."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *arguments],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_serving(ready_url, process)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)


def stop_with(process: subprocess.Popen[bytes], signal_number: int) -> tuple[int, str]:
    """Send a signal, wait for the exit, and return (exit status, stderr)."""
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=10)
    return process.returncode, stderr.decode(errors="replace")
