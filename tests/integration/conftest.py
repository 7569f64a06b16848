"""Fixtures of the testbed integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from testbed_support import (
    PYTHON,
    SESSIONS,
    run,
    stop_and_check,
    unique,
)


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
