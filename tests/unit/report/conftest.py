"""Fixtures of the report's unit tests: a sessions home of their own, a fake Prometheus."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from report_testing import FakePrometheus, range_answer


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HPCANSIBLE_HOME in tmp_path: sessions by id resolve there."""
    monkeypatch.setenv("HPCANSIBLE_HOME", str(tmp_path / "hpcansible"))
    sessions = tmp_path / "hpcansible" / "sessions"
    sessions.mkdir(parents=True)
    return sessions


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    fake = FakePrometheus(range_answer({}))
    yield fake
    fake.close()
