"""The session's Prometheus for the report: live while its job runs, else the TSDB snapshot
served on 127.0.0.1 by the same code as `prometheus ID`."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from hpcansible.errors import UserError
from hpcansible.prometheus_http import credentials, request, wait_for_scrape_after
from hpcansible.report.session import SessionRef

DEFAULT_SCRAPE_INTERVAL_S = 5.0
QUERY_TIMEOUT_S = 10.0
MAX_POINTS = 1000  # per series and query; Prometheus refuses more than 11,000


class PrometheusError(Exception):
    """One line: why a query got no answer."""


class PrometheusAPI:
    """The HTTP API, with the session's credentials (hpcansible.prometheus_http)."""

    def __init__(self, url: str, login: tuple[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.login = login

    def _get(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            body = json.loads(request(url, self.login, timeout=QUERY_TIMEOUT_S))
        except urllib.error.HTTPError as error:
            detail = _error_detail(error)
            raise PrometheusError(f"{self.url}: HTTP {error.code}{detail}") from None
        except (OSError, ValueError) as error:
            reason = getattr(error, "reason", None) or error
            raise PrometheusError(f"{self.url} unreachable ({reason})") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{self.url}: {body.get('error', 'query failed')}")
        return body["data"]

    def ping(self) -> None:
        self._get("/api/v1/query", {"query": "1"})

    def query_range(
        self, expr: str, start: float, end: float, step: float
    ) -> list[tuple[dict[str, str], list[float], list[float | None]]]:
        data = self._get(
            "/api/v1/query_range",
            {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        found = []
        for series in data.get("result", []):
            times = [float(t) for t, _ in series["values"]]
            values = [_finite(v) for _, v in series["values"]]
            found.append((series.get("metric", {}), times, values))
        return found

    def query(self, expr: str, at: float) -> list[tuple[dict[str, str], float | None]]:
        data = self._get("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
        return [(s.get("metric", {}), _finite(s["value"][1])) for s in data.get("result", [])]

    def samples(
        self, selector: str, start: float, end: float
    ) -> list[tuple[dict[str, str], list[float], list[float | None]]]:
        """The raw samples of `selector` between start and end, with their own timestamps."""
        span = max(1, math.ceil(end - start))
        data = self._get("/api/v1/query", {"query": f"{selector}[{span}s]", "time": f"{end:.3f}"})
        return [
            (
                s.get("metric", {}),
                [float(t) for t, _ in s["values"]],
                [_finite(v) for _, v in s["values"]],
            )
            for s in data.get("result", [])
        ]


def _error_detail(error: urllib.error.HTTPError) -> str:
    try:
        return f" ({json.loads(error.read()).get('error', '')})"
    except (OSError, ValueError):
        return ""


def _finite(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


@dataclass
class PrometheusSource:
    api: PrometheusAPI | None
    description: str  # what was queried, for the report
    reason: str = ""  # why there is no api


def _live(url: str, record: dict[str, Any]) -> tuple[PrometheusAPI | None, str]:
    try:
        api = PrometheusAPI(url, credentials(record))
        api.ping()
    except (PrometheusError, UserError) as error:
        return None, str(error)
    return api, ""


@contextmanager
def open_prometheus(
    session: SessionRef, binary: str = "prometheus", load_end: float | None = None
) -> Iterator[PrometheusSource]:
    """Live while the session is active and its Prometheus answers; else the stored TSDB.
    Live, it first waits (bounded) for a scrape of every target after `load_end`, so that a
    report written just as the client finishes still covers the whole measured window."""
    from hpcansible.snapshot import served_tsdb, stored_tsdb

    record = session.record
    url = record.get("prometheus", {}).get("url")
    reasons = []
    if session.active and url:
        api, reason = _live(url, record)
        if api is not None:
            if load_end is not None:
                moment = datetime.fromtimestamp(load_end, UTC).isoformat()
                wait_for_scrape_after(record, moment, scrape_interval_s(session))
            yield PrometheusSource(api, f"the session's live Prometheus at {url}")
            return
        reasons.append(reason)
    with ExitStack() as stack:
        source = served = None
        try:
            if not record:
                raise UserError("no session.json next to the results")
            source = stored_tsdb(record)
            served = stack.enter_context(served_tsdb(source, binary))
        except (UserError, OSError) as error:
            reasons.append(f"serving {source}: {error}" if source else str(error))
        if served is None:
            yield PrometheusSource(None, "", "; ".join(reasons))
        else:
            api = PrometheusAPI(served.url, served.login)
            yield PrometheusSource(api, f"the TSDB snapshot {source}")


def duration_s(value: Any) -> float | None:
    """A Prometheus duration (5s, 1m30s) in seconds, read by the collection's own parser;
    None when it is not one."""
    from hpcansible.sessions import collection_module_utils

    try:
        seconds = collection_module_utils("prometheus_api").duration_seconds(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds > 0 else None


def scrape_interval_s(session: SessionRef) -> float:
    """The session's prometheus.yml global scrape_interval (what its job was given)."""
    recorded = duration_s(session.record.get("prometheus", {}).get("scrape_interval"))
    if recorded:
        return recorded
    try:
        config = yaml.safe_load((session.directory / "prometheus" / "prometheus.yml").read_text())
        found = duration_s((config or {}).get("global", {}).get("scrape_interval"))
    except (OSError, yaml.YAMLError, AttributeError):
        found = None
    return found or DEFAULT_SCRAPE_INTERVAL_S
