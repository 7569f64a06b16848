"""Fixtures for the bench client's unit tests: test servers and a CLI runner."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bench_testing import parse_bench_args, start_http_server, start_redis_server
from hpcansible.errors import UserError


@pytest.fixture(scope="session")
def http_server() -> Iterator[str]:
    server = start_http_server()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[tuple[str, dict[str, Any]]]:
    server, state = start_redis_server(password="s3cret")
    yield f"redis://127.0.0.1:{server.port}", state
    server.stop()


@pytest.fixture
def run_bench(tmp_path: Path) -> Callable[..., tuple[int, dict[str, Any], Path]]:
    """Run `bench ARGS --output tmp --quiet`; return exit code, summary.json and the dir."""

    def run(*argv: str, output: Path | None = None) -> tuple[int, dict[str, Any], Path]:
        out = output or tmp_path / "out"
        args = parse_bench_args(["bench", *argv, "--output", str(out), "--quiet"])
        code = args.func(args)
        return code, json.loads((out / "summary.json").read_text()), out

    return run


@pytest.fixture
def bench_error() -> Callable[..., str]:
    """The one-line UserError message a bench command line raises."""

    def run(*argv: str) -> str:
        args = parse_bench_args(["bench", *argv])
        with pytest.raises(UserError) as caught:
            args.func(args)
        return str(caught.value)

    return run
