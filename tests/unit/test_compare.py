"""`compare`: metrics side by side, deltas against the baseline, thresholds, SLO verdicts,
exit codes and a JUnit report that parses back."""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "report"))
from hpcansible.cli import main
from hpcansible.compare import parse_thresholds
from hpcansible.errors import UserError
from report_testing import write_run


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Baseline `a` and a slower `b` (20 % less throughput, E2E +50 ms) as results dirs."""
    monkeypatch.setenv("HPCANSIBLE_HOME", str(tmp_path / "home"))
    write_run(tmp_path / "a", slo={"ttft_ms": 100})
    slower = write_run(tmp_path / "b", slo={"ttft_ms": 100})
    slower["throughput"]["requests_per_s"] *= 0.8
    slower["latency_ms"]["e2e"]["p99"] += 50
    (tmp_path / "b" / "summary.json").write_text(json.dumps(slower))
    return tmp_path


def compare(*argv: str, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(["compare", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_session_against_itself_passes(runs: Path, capsys):
    a = str(runs / "a")
    code, out, _ = compare(
        a, a, "--threshold", "p99=+10%,throughput=-10%,success=-1%", capsys=capsys
    )
    assert code == 0, out
    assert "checks: 8 passed, 0 failed" in out
    assert "(+0.0%)" in out and "throughput (req/s)" in out


def test_deltas_are_against_the_baseline_and_thresholds_fail_the_run(runs: Path, capsys):
    code, out, _ = compare(
        str(runs / "a"), str(runs / "b"), "--threshold", "p99=+10%,throughput=-10%", capsys=capsys
    )
    assert code == 1
    line = next(row for row in out.splitlines() if row.startswith("throughput"))
    assert "(-20.0%)" in line
    assert "FAIL b: throughput" in out and "-20.0% (crosses throughput=-10%)" in out
    assert "FAIL b: E2E p99" in out
    assert "checks: 4 passed, 2 failed" in out
    code, out, _ = compare(
        str(runs / "a"), str(runs / "b"), "--threshold", "throughput=-25%,p99=+60", capsys=capsys
    )
    assert code == 0, out  # -20 % is within -25 %; +50 ms within +60 ms


def test_junit_has_one_testcase_per_session_and_check(runs: Path, capsys, tmp_path: Path):
    junit = tmp_path / "compare.xml"
    code, _, _ = compare(
        str(runs / "a"),
        str(runs / "b"),
        "--threshold",
        "throughput=-10%",
        "--junit",
        str(junit),
        capsys=capsys,
    )
    assert code == 1
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "4" and root.get("failures") == "1"
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    assert set(cases) == {
        ("hpcansible.compare.a", "throughput -10%"),
        ("hpcansible.compare.a", "slo"),
        ("hpcansible.compare.b", "throughput -10%"),
        ("hpcansible.compare.b", "slo"),
    }
    failure = cases[("hpcansible.compare.b", "throughput -10%")].find("failure")
    assert failure is not None and "-20.0%" in failure.get("message")
    assert cases[("hpcansible.compare.a", "slo")].find("failure") is None


def test_a_failed_slo_fails_unless_told_not_to_gate(runs: Path, capsys):
    write_run(runs / "bad", errors=30, slo={"ttft_ms": 100})
    code, out, _ = compare(str(runs / "a"), str(runs / "bad"), capsys=capsys)
    assert code == 1 and "FAIL bad: SLO FAIL: 50.0% of requests meet ttft_ms <= 100" in out
    assert ["SLO", "pass", "FAIL"] in [row.split() for row in out.splitlines()]
    code, _, _ = compare(str(runs / "a"), str(runs / "bad"), "--no-slo", capsys=capsys)
    assert code == 0


def test_sweep_points_compare_with_the_baselines_point_of_the_same_label(runs: Path, capsys):
    for name, factor in (("s1", 1.0), ("s2", 0.5)):
        points = []
        for c in (1, 2):
            summary = write_run(runs / name / f"concurrency-{c}")
            summary["throughput"]["requests_per_s"] = 10.0 * c * factor
            points.append(
                {"label": f"concurrency-{c}", "values": {"concurrency": c}, "summary": summary}
            )
        top = {"sweep": {"axes": {"concurrency": [1, 2]}}, "points": points}
        (runs / name / "summary.json").write_text(json.dumps(top))
    code, out, _ = compare(
        str(runs / "s1"), str(runs / "s2"), "--threshold", "throughput=-10%", capsys=capsys
    )
    assert code == 1
    assert (
        "FAIL s2/concurrency-2: throughput 10.000 req/s against 20.000 in s1/concurrency-2" in out
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("p99", "expected NAME=LIMIT"),
        ("latency=+10%", "unknown metric 'latency'"),
        ("p99=ten", "the limit must look like +10%, -5% or 50"),
        ("p99=+10%%", "the limit must look like"),
    ],
)
def test_threshold_mistakes_are_one_line_user_errors(spec: str, message: str, runs, capsys):
    with pytest.raises(UserError, match=re.escape(message)):
        parse_thresholds([spec])
    code, _, err = compare(str(runs / "a"), "--threshold", spec, capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and message.split(" ")[0] in err


def test_thresholds_parse_sign_unit_and_alias():
    p99, success, tokens = parse_thresholds(["p99=+10%", "success=-1%,tok_s=5"])
    assert (p99.metric.name, p99.direction, p99.limit, p99.relative) == ("e2e_p99", "+", 0.1, True)
    assert success.crossed(success.change(0.98, 1.0)) and not success.crossed(0.0)
    assert (tokens.metric.name, tokens.direction, tokens.relative) == ("tokens", "", False)
    assert tokens.crossed(tokens.change(94, 100)) and not tokens.crossed(tokens.change(104, 100))


def test_unknown_sessions_and_missing_results_are_errors(runs: Path, capsys):
    code, _, err = compare("no_such_session", capsys=capsys)
    assert code == 2 and "session no_such_session: unknown" in err
    (runs / "empty").mkdir()
    code, _, err = compare(str(runs / "empty"), capsys=capsys)
    assert code == 2 and "neither a session directory" in err
