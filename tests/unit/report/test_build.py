"""The whole report: report.html self-contained with plots that hold data, report.md with
its images next to it, panels that could not be drawn named with their reason."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hpcansible.errors import UserError
from hpcansible.report.build import ReportPaths, write_report
from hpcansible.report.command import write_report_or_warn
from report_testing import (
    LINE_BLUE,
    START,
    FakePrometheus,
    busy_during,
    colored_pixels,
    counter_samples,
    range_answer,
    saturated_pixels,
    write_run,
    write_session,
)

WINDOW = (START, START + 15)


def cpu_seconds(t: float) -> float:
    return 0.1 * (t - START + 100) + 1.4 * min(max(t - START, 0), 15)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ReportPaths]]:
    """One report of a running session with a live (fake) Prometheus, for several tests."""
    fake = FakePrometheus(
        range_answer({"memory": busy_during(WINDOW, 2**28, 2**29)}),
        samples=counter_samples({"cpu_usage|network|fs_": cpu_seconds, "bench": cpu_seconds}),
    )
    home = tmp_path_factory.mktemp("hpcansible")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HPCANSIBLE_HOME", str(home))
        directory = write_session(home / "sessions", url=fake.url)
        write_run(directory / "results", slo={"ttft_ms": 100, "tpot_ms": 50})
        paths = write_report(str(directory))
    fake.close()
    yield directory, paths


def embedded_images(html: str) -> dict[str, bytes]:
    found = re.findall(r'<figure id="([^"]+)"><img [^>]*src="data:image/png;base64,([^"]+)"', html)
    return {name: base64.b64decode(data) for name, data in found}


def test_the_report_is_self_contained_and_every_plot_holds_data(live):
    directory, paths = live
    html = paths.html.read_text()
    assert paths.html == directory / "report.html" and paths.missing == []
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html), "a reference outside the file"
    assert "<script" not in html and "<link" not in html and "@import" not in html
    images = embedded_images(html)
    assert list(images) == [
        "client_requests",
        "client_ttft",
        "client_e2e",
        "service_cpu",
        "service_memory",
        "service_network",
        "service_disk",
        "distributions",
    ]
    for name, png in images.items():
        assert png.startswith(b"\x89PNG"), name
        assert saturated_pixels(png) > 800, f"{name}: no data drawn"
        if name != "distributions":  # the first line of every time panel
            assert colored_pixels(png, LINE_BLUE) > 200, f"{name}: no data drawn"
    assert "covered: 2 samples inside it" in html
    assert "SLO pass: 96.7% of requests meet ttft_ms &lt;= 100, tpot_ms &lt;= 50" in html
    assert "prompt_lengths is not used" in html and "node1" in html


def test_a_live_report_waits_for_the_scrape_after_the_load(tmp_path: Path, monkeypatch):
    """Written as the client finishes (run --report, report ID), it first lets Prometheus
    scrape every target once after the measured window's end, so that the window is covered."""
    fake = FakePrometheus(
        range_answer({"memory": busy_during(WINDOW, 2**28, 2**29)}),
        samples=counter_samples({"cpu_usage|network|fs_": cpu_seconds, "bench": cpu_seconds}),
    )
    end = START + 15  # the fixture's measured window ends here (write_run)
    fake.last_scrapes = [end - 4, end - 2, end + 1]
    monkeypatch.setenv("HPCANSIBLE_HOME", str(tmp_path))
    directory = write_session(tmp_path / "sessions", url=fake.url)
    write_run(directory / "results")
    write_report(str(directory))
    fake.close()
    polls = [path for path, _, _ in fake.requests if path == "/api/v1/targets"]
    paths = [path for path, _, _ in fake.requests]
    assert len(polls) == 3, "polled until every target was scraped after the load"
    last_poll = len(paths) - 1 - paths[::-1].index("/api/v1/targets")
    assert "/api/v1/query_range" not in paths[:last_poll], "queried before the last scrape"


def test_the_markdown_has_the_same_tables_and_its_images_as_files(live):
    directory, paths = live
    markdown = paths.markdown.read_text()
    linked = re.findall(r"!\[[^\]]*\]\((report_files/[^)]+\.png)\)", markdown)
    assert len(linked) == 8 and all((directory / link).is_file() for link in linked)
    assert sorted(p.name for p in paths.images) == sorted(Path(link).name for link in linked)
    assert "| TTFT p99 |" in markdown and "| ttft | 58 |" in markdown
    assert "## Provenance" in markdown and "| service | 11 | node1 |" in markdown


def test_the_time_axis_marks_the_window_and_the_gate(live):
    _, paths = live
    html = paths.html.read_text()
    png = embedded_images(html)["service_cpu"]
    assert colored_pixels(png, (0xD6, 0x27, 0x28), 40) > 80, "no gate line"
    assert colored_pixels(png, (0xD8, 0xEC, 0xD8), 12) > 5000, "no shaded window"


def test_an_unreachable_prometheus_still_gives_the_client_panels(home: Path):
    directory = write_session(home, url="http://127.0.0.1:9")
    write_run(directory / "results")
    paths = write_report(str(directory))
    html = paths.html.read_text()
    assert set(embedded_images(html)) == {
        "client_requests",
        "client_ttft",
        "client_e2e",
        "distributions",
    }
    assert len(paths.missing) == 4 and all("unreachable" in m for m in paths.missing)
    assert "Panels not shown: service job 11: CPU (http://127.0.0.1:9 unreachable" in html
    assert html.count('class="missing"') == 4


def test_a_sweep_gets_its_plots_and_a_table_per_point(home: Path):
    directory = write_session(home, url="http://127.0.0.1:9")
    results = directory / "results"
    points = []
    for n, c in enumerate((1, 2, 4)):
        summary = write_run(
            results / f"concurrency-{c}", origin=START + 30 * n, slo={"ttft_ms": 100}
        )
        summary["throughput"]["requests_per_s"] *= min(c, 2)
        points.append(
            {"label": f"concurrency-{c}", "values": {"concurrency": c}, "summary": summary}
        )
    top = {
        "sweep": {"load_axis": "concurrency", "axes": {"concurrency": [1, 2, 4]}},
        "points": points,
        "knee": {"label": "concurrency-2"},
        "max_load_meeting_slo": {"label": "concurrency-4"},
    }
    (results / "summary.json").write_text(json.dumps(top))
    paths = write_report(str(directory))
    html = paths.html.read_text()
    images = embedded_images(html)
    assert "sweep" in images and colored_pixels(images["sweep"], LINE_BLUE) > 200
    assert "concurrency-2 (knee)" in html and "concurrency-4 (max load meeting SLO)" in html
    assert "Knee: concurrency-2. Highest load meeting the SLO: concurrency-4." in html
    assert colored_pixels(images["client_requests"], LINE_BLUE) > 200


def test_errors_are_one_line_user_errors(home: Path, capsys: pytest.CaptureFixture):
    with pytest.raises(UserError, match="session nothing: unknown"):
        write_report("nothing")
    write_session(home, "waiting")
    with pytest.raises(UserError, match="no results yet"):
        write_report("waiting")
    assert write_report_or_warn("waiting") is None
    assert capsys.readouterr().err.startswith("hpcansible: no report: session waiting: no results")
