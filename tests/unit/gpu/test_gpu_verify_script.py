"""tests/gpu/verify_gpu_exporter.py, the device check, judged on recorded scrapes: its verdict
and table must be right before the few minutes of GPU time are spent on it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "tests" / "gpu" / "verify_gpu_exporter.py"
spec = importlib.util.spec_from_file_location("verify_gpu_exporter", SCRIPT)
verify = importlib.util.module_from_spec(spec)
spec.loader.exec_module(verify)


def reading(util, power, clock, used, energy):
    return {
        "utilisation %": util,
        "power W": power,
        "SM clock MHz": clock,
        "memory used MiB": used,
        "temperature C": 30,
        "energy mJ": energy,
    }


def recorded(load_util=100, load_used=1497, process_mib=880.0):
    """Figures like issue 11's H200 run: idle 0 %, 98 W, 390 MHz; 100 %, 690 W under load."""
    return {
        "idle": [reading(0, 98.0, 390, 615, 1_000_000)] * 3,
        "load": [
            reading(load_util, 690.5, 1395, load_used, 9_000_000),
            reading(load_util, 688.0, 1515, load_used, 12_000_000),
        ],
        "after": reading(0, 120.0, 1980, 615, 15_000_000),
        "processes": [[{"pid": "4321", "process": "python3", "used_mib": process_mib}]],
        "load_pid": 4321,
    }


def test_a_good_run_passes_and_prints_idle_against_load():
    result = recorded()
    assert verify.check(result) == []
    table = verify.table(result)
    assert "utilisation %" in table and "100" in table
    assert "1395 to 1515" in table  # SM clock under load
    assert "energy during the load J" in table and "14000" in table
    assert "load process memory MiB" in table and "880" in table


@pytest.mark.parametrize(
    ("changes", "failure"),
    [
        ({"load_util": 42}, "utilisation under load 42 %, not above 90 %"),
        ({"load_used": 615}, "memory used did not rise under load"),
        ({"process_mib": 0}, "the load's process memory was not served"),
    ],
)
def test_a_bad_run_says_what_failed(changes, failure):
    assert failure in verify.check(recorded(**changes))


def test_without_a_gpu_it_exits_2_and_says_why(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--seconds", "1", "--json", str(tmp_path / "r.json")],
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout.startswith("no GPU visible: ")
    assert (tmp_path / "r.json").exists()
