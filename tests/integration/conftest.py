"""Fixtures of the testbed integration tests."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from testbed_support import job_processes, read_record, session_jobs, stop


@pytest.fixture
def sessions(slurm_testbed) -> Iterator[list[str]]:
    """Session ids a test started; each is stopped afterwards and must leave nothing behind."""
    started: list[str] = []
    yield started
    for session_id in started:
        record = read_record(session_id)
        job_ids = [
            str(job["job_id"]) for job in record.get("jobs", {}).values() if job.get("job_id")
        ]
        stop(session_id)
        assert session_jobs(session_id) == []
        deadline = time.monotonic() + 15
        while job_processes(job_ids) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert job_processes(job_ids) == [], f"processes of session {session_id} outlived its jobs"
