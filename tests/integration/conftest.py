"""Fixtures of the testbed integration tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from testbed_support import (
    PYTHON,
    SESSIONS,
    job_processes,
    read_record,
    run,
    session_jobs,
    stop,
    unique,
)


def stop_and_check(session_id: str) -> None:
    """Stop the session; none of its jobs and none of their processes may be left."""
    record = read_record(session_id)
    job_ids = [str(job["job_id"]) for job in record.get("jobs", {}).values() if job.get("job_id")]
    stop(session_id)
    assert session_jobs(session_id) == []
    deadline = time.monotonic() + 15
    while job_processes(job_ids) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert job_processes(job_ids) == [], f"processes of session {session_id} outlived its jobs"


@pytest.fixture
def sessions(slurm_testbed) -> Iterator[list[str]]:
    """Session ids a test started; each is stopped afterwards and must leave nothing behind."""
    started: list[str] = []
    yield started
    for session_id in started:
        stop_and_check(session_id)


class DefaultSession(NamedTuple):
    id: str
    directory: Path


@pytest.fixture(scope="module")
def default_session(slurm_testbed) -> Iterator[DefaultSession]:
    """One session with the testbed profile's default recipes (`run` without recipes) per test
    module, running when the first test starts; stopped at the end, leaving nothing behind.
    Tests may stop it earlier themselves (stopping twice is harmless)."""
    session_id = unique("default")
    done = run([PYTHON, "-m", "hpcansible", "run", "--session-id", session_id], timeout=600)
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        yield DefaultSession(session_id, SESSIONS / session_id)
    finally:
        stop_and_check(session_id)
