"""GPU requests reach sbatch as SLURM's own options: --gres and --gpus, as argument-list items."""

from __future__ import annotations

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.hpcansible.hpc.plugins.module_utils.slurm import SbatchOptions
from ansible_collections.hpcansible.hpc.plugins.modules import slurm_job


class Exited(Exception):
    pass


def test_sbatch_options_pass_gres_and_gpus_verbatim():
    argv = SbatchOptions(partition="gpu", gres="gpu:h200:1", gpus="h200:2").argv()
    assert argv == ["sbatch", "--parsable", "--partition=gpu", "--gres=gpu:h200:1", "--gpus=h200:2"]


def test_slurm_job_check_mode_shows_the_gpu_options(monkeypatch):
    """What --dry-run records: the sbatch command line the job would be submitted with."""
    calls = []

    def run_command(self, args, **kwargs):
        calls.append(args)
        return 0, "", ""  # squeue: no job of that name yet

    def exit_json(self, **result):
        raise Exited(result)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    arguments = {
        "session": "g1",
        "role": "service",
        "script": "#!/bin/bash\ntrue\n",
        "partition": "gpu",
        "gres": "gpu:1",
        "gpus": "1",
        "_ansible_check_mode": True,
    }
    with patch_module_args(arguments), pytest.raises(Exited) as done:
        slurm_job.main()
    result = done.value.args[0]
    assert result["state"] == "WOULD_SUBMIT"
    assert "--gres=gpu:1" in result["sbatch_argv"] and "--gpus=1" in result["sbatch_argv"]
    assert all(call[0] == "squeue" for call in calls)  # nothing submitted
