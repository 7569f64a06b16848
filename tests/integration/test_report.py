"""`report ID` and `compare` on one default session of the testbed: the report while the jobs
run (live Prometheus) and after `stop` (the TSDB snapshot), looked at in headless Chromium;
compare against itself and against a second measurement of the same service."""

from __future__ import annotations

import base64
import io
import itertools
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import numpy
import pytest
from matplotlib import image
from testbed_support import PYTHON, http_json, read_record, run, wait_for_summary

pytestmark = pytest.mark.testbed

LINE_BLUE = numpy.array((0x1F, 0x77, 0xB4))  # the first line of every time panel
GATE_RED = numpy.array((0xD6, 0x27, 0x28))
TIME_PANELS = (
    "client_requests",
    "client_ttft",
    "client_e2e",
    "service_cpu",
    "service_memory",
    "service_network",
    "service_disk",
)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return run([PYTHON, "-m", "hpcansible", *args], timeout=timeout)


def pixels(png: bytes) -> numpy.ndarray:
    return image.imread(io.BytesIO(png), format="png")[..., :3] * 255


def blue(rgb: numpy.ndarray) -> numpy.ndarray:
    return numpy.abs(rgb - LINE_BLUE).max(axis=-1) <= 40


def data_pixels(rgb: numpy.ndarray) -> numpy.ndarray:
    """Clearly coloured pixels (lines, bars) but the gate's red line: not the white, grey and
    black of axes and text, nor the pale green of the measured window."""
    colored = (rgb.max(axis=-1) - rgb.min(axis=-1)) > 80
    return colored & (numpy.abs(rgb - GATE_RED).max(axis=-1) > 40)


def embedded(html: str) -> dict[str, bytes]:
    found = re.findall(r'<figure id="([^"]+)"><img [^>]*src="data:image/png;base64,([^"]+)"', html)
    return {name: base64.b64decode(data) for name, data in found}


def check_report(directory: Path, source: str) -> str:
    html = (directory / "report.html").read_text()
    assert source in html
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html), "refers outside itself"
    images = embedded(html)
    assert set(TIME_PANELS) <= set(images), (
        f"panels missing: {sorted(set(TIME_PANELS) - set(images))}"
    )
    for name in TIME_PANELS:
        drawn = blue(pixels(images[name])).sum()
        assert drawn > 300, f"{name}: its data line is {drawn} pixels"
    markdown = (directory / "report.md").read_text()
    for link in re.findall(r"\]\((report_files/[^)]+)\)", markdown):
        assert (directory / link).stat().st_size > 10_000, link
    assert "covered:" in html and "NOT covered" not in html, (
        "Prometheus did not sample the service across the window"
    )
    return html


def test_report_while_the_jobs_run(default_session):
    record = read_record(default_session.id)
    wait_for_summary(record)
    done = cli("report", default_session.id)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == str(default_session.directory / "report.html")
    check_report(default_session.directory, "the session&#x27;s live Prometheus at http")


def second_measurement(record: dict, output: Path) -> None:
    """A few more requests to the session's service, from here, as a results directory. The
    service's API key goes in the 0600 config file, as the session's own client gets it."""
    key = (Path(record["session_dir"]) / "service" / "llamacpp" / "api_key").read_text().strip()
    config = output.parent / f"{output.name}.yml"
    config.write_text(
        json.dumps(
            {
                "endpoint": record["service_endpoint"], "api": "openai", "model": "gemma3-270m",
                "openai_endpoint": "chat", "concurrency": 1, "requests": 4, "output_tokens": 16,
                "prompts": "default", "slo": "ttft_ms:2000,tpot_ms:200", "output": str(output),
                "quiet": True, "password": key,
            }
        )
    )  # fmt: skip
    config.chmod(0o600)
    done = cli("bench", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert (output / "summary.json").is_file()


def test_prometheus_saw_the_whole_measured_window(default_session):
    """The session's story is true: the service's CPU was sampled at every scrape interval from
    before the first measured request to after the last, and rose during the load."""
    record = read_record(default_session.id)
    window = wait_for_summary(record)["window"]
    start, end = (datetime.fromisoformat(window[key].replace("Z", "+00:00")).timestamp()
                  for key in ("start", "end"))  # fmt: skip
    time.sleep(6)  # one more scrape after the last request
    job_id = record["jobs"]["service"]["job_id"]
    query = urllib.parse.urlencode({
        "query": f'container_cpu_usage_seconds_total{{job="{record["service"]["exporter_job"]}",'
                 f'id=~".*/job_{job_id}"}}',
        "start": f"{start - 30:.3f}", "end": f"{end + 6:.3f}", "step": "1",
    })  # fmt: skip
    answer = http_json(f"{record['prometheus']['url']}/api/v1/query_range?{query}", record=record)
    series = answer["data"]["result"]
    assert len(series) == 1, series
    steps = [float(t) for t, _ in series[0]["values"]]
    # 1 s steps: a first sample less than a second before the first request (the gate opens
    # right after the first scrape) shows at the step of the window's start itself.
    assert steps[0] <= start and steps[-1] > end, (steps[0], steps[-1], start, end)
    assert all(b - a == 1 for a, b in itertools.pairwise(steps)), "query_range has holes"
    # query_range repeats the last sample at each step: the scrapes are where the value or
    # Prometheus's lookback changes; check coverage from the raw samples instead.
    raw = http_json(
        f"{record['prometheus']['url']}/api/v1/query?"
        + urllib.parse.urlencode({"query": series_selector(series[0]["metric"]) + "[10m]",
                                  "time": f"{end + 6:.3f}"}),
        record=record,
    )["data"]["result"][0]["values"]  # fmt: skip
    times = [float(t) for t, _ in raw]
    assert min(times) < start and max(times) > end, (times, start, end)
    inside = sorted(t for t in times if start - 6 <= t <= end + 6)
    gaps = [b - a for a, b in itertools.pairwise(inside)]
    assert gaps and max(gaps) <= 5.0 * 1.5, gaps  # one sample per 5 s scrape interval
    cores_before = cores(raw, start - 30, start)
    cores_during = cores(raw, start, end + 5)
    assert cores_during > 0.3 and cores_during > 3 * cores_before, (cores_before, cores_during)


def cores(samples: list, since: float, until: float) -> float:
    """CPU seconds per second between the first and the last raw sample in [since, until]."""
    inside = [(float(t), float(v)) for t, v in samples if since <= float(t) <= until]
    if len(inside) < 2:
        return 0.0
    (t0, v0), (t1, v1) = inside[0], inside[-1]
    return (v1 - v0) / (t1 - t0)


def series_selector(metric: dict) -> str:
    labels = ",".join(f'{k}="{v}"' for k, v in metric.items() if k != "__name__")
    return f"{metric['__name__']}{{{labels}}}"


def test_the_llm_server_answers_only_with_its_key(default_session):
    record = read_record(default_session.id)
    key = (default_session.directory / "service" / "llamacpp" / "api_key").read_text().strip()
    probe = (
        "import sys, json, urllib.request, urllib.error\n"
        "body = json.dumps({'model': 'gemma3-270m', 'prompt': 'Hi', 'max_tokens': 1}).encode()\n"
        "for header in ({}, {'Authorization': 'Bearer ' + sys.argv[2]}):\n"
        "    request = urllib.request.Request(sys.argv[1] + '/v1/completions', data=body,\n"
        "        headers={'Content-Type': 'application/json', **header})\n"
        "    try:\n"
        "        print(urllib.request.urlopen(request, timeout=60).status)\n"
        "    except urllib.error.HTTPError as error:\n"
        "        print(error.code)\n"
    )
    done = run(["nsenter", "--net=/var/run/netns/node3", PYTHON, "-c", probe,
                record["service_endpoint"], key], timeout=120)  # fmt: skip
    assert done.stdout.split() == ["401", "200"], done.stdout + done.stderr
    assert key not in run(["scontrol", "show", "job", record["jobs"]["service"]["job_id"]]).stdout


def test_compare_itself_then_a_second_measurement(default_session, tmp_path: Path):
    session_id = default_session.id
    summary = wait_for_summary(read_record(session_id))
    checks = "p99=+10%,throughput=-10%,success=-1%"
    done = cli("compare", session_id, session_id, "--threshold", checks, "--no-slo")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "checks: 6 passed, 0 failed" in done.stdout
    # with the SLO as a check, the exit code is the recipe's verdict
    junit = tmp_path / "self.xml"
    done = cli("compare", session_id, session_id, "--junit", str(junit))
    met = summary["goodput"]["met"]
    assert done.returncode == (0 if met else 1), done.stdout
    root = ET.parse(junit).getroot()
    assert root.get("tests") == "2" and root.get("failures") == ("0" if met else "2")
    other = tmp_path / "again"
    second_measurement(read_record(session_id), other)
    junit = tmp_path / "tight.xml"
    done = cli(
        "compare",
        session_id,
        str(other),
        "--threshold",
        "p99=0%,throughput=0%",
        "--no-slo",
        "--junit",
        str(junit),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    root = ET.parse(junit).getroot()
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    assert set(cases) == {
        (f"hpcansible.compare.{name}", check)
        for name in (session_id, "again")
        for check in ("e2e_p99 0%", "throughput 0%")
    }
    assert cases[("hpcansible.compare.again", "throughput 0%")].find("failure") is not None
    assert cases[(f"hpcansible.compare.{session_id}", "throughput 0%")].find("failure") is None


def screenshot(html: Path, png: Path, profile: Path) -> numpy.ndarray:
    chromium = shutil.which("chromium")
    assert chromium, "the Debian package chromium is not installed (Makefile APT_PACKAGES)"
    done = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            "--window-size=1400,4000",
            html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and png.is_file(), done.stderr[-2000:]
    return pixels(png.read_bytes())


def longest_run(row: numpy.ndarray) -> tuple[int, int]:
    """(start, length) of the longest run of True in a row of pixels."""
    edges = numpy.flatnonzero(numpy.diff(numpy.concatenate(([0], row.astype(int), [0]))))
    if not len(edges):
        return 0, 0
    starts, ends = edges[0::2], edges[1::2]
    longest = int(numpy.argmax(ends - starts))
    return int(starts[longest]), int(ends[longest] - starts[longest])


def plot_areas(shot: numpy.ndarray) -> list[tuple[int, int, int, int]]:
    """The time panels' axes as the page shows them: rows crossed by one dark line longer
    than 700 pixels are their top and bottom spines (a line scaled between two rows of
    pixels is two grey rows; the distributions' axes are narrower). (top, bottom, left,
    right) of each plot area, in screen pixels."""
    dark = (shot < 140).all(axis=-1)
    spines: list[tuple[int, int, int]] = []  # row, first column, length
    for y in range(dark.shape[0]):
        start, length = longest_run(dark[y])
        if length <= 700:
            continue
        if spines and y - spines[-1][0] <= 2:
            continue  # the same spine, on a second row
        spines.append((y, start, length))
    return [
        (top[0] + 3, bottom[0] - 2, top[1] + 2, top[1] + top[2] - 2)
        for top, bottom in zip(spines[0::2], spines[1::2], strict=False)
    ]


def test_report_after_stop_from_the_snapshot_in_chromium(default_session, tmp_path: Path):
    wait_for_summary(read_record(default_session.id))
    done = cli("stop", default_session.id, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "report " in done.stderr, "stop did not write the report"
    record = read_record(default_session.id)
    assert record["status"] == "stopped" and record["prometheus"].get("snapshot")
    check_report(default_session.directory, "the TSDB snapshot")
    done = cli("report", default_session.id)  # again, on demand, from the snapshot
    assert done.returncode == 0, done.stderr
    html = check_report(default_session.directory, "the TSDB snapshot")
    shot = screenshot(
        default_session.directory / "report.html", tmp_path / "report.png", tmp_path / "chromium"
    )
    areas = plot_areas(shot)
    assert len(areas) >= len(TIME_PANELS), f"{len(areas)} time plots on the page: {areas}"
    for top, bottom, left, right in areas:
        assert bottom - top > 100 and right - left > 700, (top, bottom, left, right)
        drawn = data_pixels(shot[top:bottom, left:right]).sum()
        assert drawn > 300, f"the plot at rows {top}-{bottom} is blank ({drawn} data pixels)"
    white = (shot > 245).all(axis=-1).mean()
    assert white < 0.97, f"the page is {white:.0%} white"
    assert json.loads((default_session.directory / "results" / "summary.json").read_text())
    assert "Provenance" in html
