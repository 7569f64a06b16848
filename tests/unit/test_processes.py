"""The CLI's helper processes end even when they ignore SIGTERM."""

from __future__ import annotations

import subprocess
import time

from hpcansible.processes import descendants, end_descendants, end_pid, end_process

IGNORES_SIGTERM = ["sh", "-c", "trap '' TERM; echo ready; exec sleep 30"]


def started(argv: list[str]) -> subprocess.Popen:
    process = subprocess.Popen(argv, stdout=subprocess.PIPE)
    assert process.stdout.readline() == b"ready\n"
    return process


def test_end_process_kills_what_ignores_sigterm():
    process = started(IGNORES_SIGTERM)
    began = time.monotonic()
    end_process(process, grace_s=0.3)
    assert process.returncode == -9
    assert time.monotonic() - began < 5


def test_end_process_stops_at_sigterm_when_heeded():
    process = started(["sh", "-c", "echo ready; exec sleep 30"])
    end_process(process, grace_s=5)
    assert process.returncode == -15


def test_end_process_of_an_ended_process_is_harmless():
    process = subprocess.Popen(["true"])
    process.wait()
    end_process(process)
    assert process.returncode == 0


def test_end_pid_kills_what_ignores_sigterm():
    process = started(IGNORES_SIGTERM)
    end_pid(process.pid, grace_s=0.3)
    assert process.wait(timeout=5) == -9


def test_descendants_are_ended_also_when_they_ignore_sigterm():
    process = started(IGNORES_SIGTERM)
    try:
        assert process.pid in descendants()
        assert process.pid in end_descendants(grace_s=0.5)
        assert process.wait(timeout=5) == -9
    finally:
        if process.poll() is None:
            process.kill()
