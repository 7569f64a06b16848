"""The one GPU rule (plugins/module_utils/gpu.py): from Python, and from Jinja through the
hpcansible.hpc.asks_for_gpus and gpu_count filters, with the same answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.hpcansible.hpc.plugins.filter import asks_for_gpus as gpu_filter
from ansible_collections.hpcansible.hpc.plugins.module_utils.gpu import asks_for_gpus, gpu_count

PROJECT = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent  # the venv that runs the tests has ansible

CASES = [
    ({}, 0),
    ({"partition": "gpu"}, 0),  # a GPU partition alone gives a job no GPU
    ({"gres": "gpu"}, 1),
    ({"gres": "gpu:1"}, 1),
    ({"gres": "gpu:4"}, 4),
    ({"gres": "gpu:a100:2"}, 2),
    ({"gres": "gpu:a100"}, 1),
    ({"gres": "gpu:0"}, 0),
    ({"gres": "shard:2,gpu:h200:1"}, 1),
    ({"gres": "gres/gpu:3"}, 3),
    ({"gres": "mps:100"}, 0),
    ({"gres": "gpuish:1"}, 0),
    ({"gpus": 2}, 2),
    ({"gpus": "1"}, 1),
    ({"gpus": "h200:2"}, 2),
    ({"partition": "gpu", "gpus": "1"}, 1),
    ({"gpus": 0}, 0),
    ({"extra_args": ["--gres=gpu:2"]}, 2),
    ({"extra_args": ["--gpus", "3"]}, 3),
    ({"extra_args": ["-G2"]}, 2),
    ({"extra_args": ["--gpus-per-node=a100:1"]}, 1),
    ({"extra_args": ["--gpus-per-task", "1", "--exclusive"]}, 1),
    ({"extra_args": ["--ntasks-per-node=1", "--exclusive"]}, 0),
    ({"gres": "gpu:1", "extra_args": ["--gpus-per-task=1"]}, 2),
]


@pytest.mark.parametrize(("resources", "count"), CASES)
def test_gpu_rule_in_python(resources, count):
    assert gpu_count(resources) == count
    assert asks_for_gpus(resources) is (count > 0)


def test_none_asks_for_nothing():
    assert gpu_count(None) == 0 and not asks_for_gpus(None)


def test_the_filters_are_the_rule():
    filters = gpu_filter.FilterModule().filters()
    assert filters == {"asks_for_gpus": asks_for_gpus, "gpu_count": gpu_count}


def test_the_same_answers_from_jinja_in_ansible(tmp_path):
    """One ansible call renders every case through the collection's filters."""
    answers_file = tmp_path / "answers.json"
    expression = (
        "{{ {'counts': cases | map('hpcansible.hpc.gpu_count') | list,"
        " 'asks': cases | map('hpcansible.hpc.asks_for_gpus') | list} | to_json }}"
    )
    done = subprocess.run(
        [
            str(VENV_BIN / "ansible"),
            "localhost",
            "-m",
            "ansible.builtin.copy",
            "-a",
            json.dumps({"content": expression, "dest": str(answers_file), "mode": "0600"}),
            "-e",
            json.dumps({"cases": [resources for resources, _ in CASES]}),
        ],
        cwd=PROJECT,
        env={
            **os.environ,
            "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    answers = json.loads(answers_file.read_text())
    assert answers["counts"] == [count for _, count in CASES]
    assert answers["asks"] == [count > 0 for _, count in CASES]


def test_documented_examples_hold():
    assert asks_for_gpus({"partition": "gpu", "gres": "gpu:1"}) is True
    doc = yaml.safe_load((Path(gpu_filter.__file__).parent / "gpu_count.yml").read_text())
    assert "# 2" in doc["EXAMPLES"] and gpu_count({"gres": "gpu:a100:2"}) == 2
    assert "# true" in gpu_filter.EXAMPLES
