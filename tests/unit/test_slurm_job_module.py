"""The slurm_job module's logic, run through its real main() against an in-memory SLURM.

`AnsibleModule.run_command` is replaced by a fake SLURM CLI that answers sbatch, squeue,
scontrol and scancel in their real output formats; module arguments go in the way Ansible
passes them (ansible.module_utils.testing.patch_module_args). No SLURM is needed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.hpcansible.hpc.plugins.module_utils.slurm import SQUEUE_FORMAT
from ansible_collections.hpcansible.hpc.plugins.modules import slurm_job

SCRIPT = "#!/bin/bash\nsleep 60\n"


class ExitJson(Exception):
    pass


class FailJson(Exception):
    pass


@dataclass
class FakeJob:
    job_id: str
    name: str
    comment: str
    script: str
    options: dict[str, str]
    state: str = "RUNNING"
    reason: str = "None"
    nodelist: str = "node1"
    exit_code: str = "0:0"
    user: str = "root"
    partition: str = "debug"

    @property
    def stdout(self) -> str:
        return self.options.get("output", f"/tmp/slurm-{self.job_id}.out").replace(
            "%j", self.job_id
        )


@dataclass
class FakeSlurmCLI:
    """sbatch/squeue/scontrol/scancel over a dict of jobs, printing what SLURM 22.05 prints."""

    jobs: dict[str, FakeJob] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)
    next_id: int = 100
    # what a new job becomes: a callable(options) -> (state, reason, nodelist)
    schedule: object = None
    exit_code: str = "0:0"  # of new jobs
    sbatch_error: str = ""

    def add(self, name, comment="(null)", state="RUNNING", nodelist="node1", **kwargs) -> FakeJob:
        job = FakeJob(
            str(self.next_id), name, comment, SCRIPT, {}, state=state, nodelist=nodelist, **kwargs
        )
        self.jobs[job.job_id] = job
        self.next_id += 1
        return job

    def commands(self, program: str) -> list[list[str]]:
        return [call for call in self.calls if call[0] == program]

    def __call__(self, argv: list[str], stdin: str | None) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        handler = getattr(self, argv[0])
        return handler(argv[1:], stdin)

    @staticmethod
    def options(args: list[str]) -> dict[str, str]:
        found = {}
        for arg in args:
            if arg.startswith("--"):
                key, _, value = arg[2:].partition("=")
                found[key] = value
        return found

    def sbatch(self, args, stdin):
        if self.sbatch_error:
            return 1, "", self.sbatch_error
        options = self.options(args)
        assert "parsable" in options
        if not (stdin or "").startswith("#!"):
            return 1, "", "sbatch: error: This does not look like a batch script.  The first\n"
        state, reason, nodelist = ("RUNNING", "None", "node1")
        if self.schedule:
            state, reason, nodelist = self.schedule(options)
        job = FakeJob(
            str(self.next_id),
            options.get("job-name", "sbatch"),
            options.get("comment", "(null)"),
            stdin,
            options,
            state=state,
            reason=reason,
            nodelist=nodelist,
            exit_code=self.exit_code,
        )
        self.jobs[job.job_id] = job
        self.next_id += 1
        return 0, f"{job.job_id}\n", ""

    def squeue(self, args, stdin):
        assert args[:3] == ["-h", "-o", SQUEUE_FORMAT]
        options = self.options(args[3:])
        lines = []
        for job in self.jobs.values():
            active = job.state not in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT")
            if not active and options.get("states") != "all":
                continue
            if "name" in options and job.name not in options["name"].split(","):
                continue
            if "jobs" in options and job.job_id not in options["jobs"].split(","):
                continue
            if "user" in options and job.user != options["user"]:
                continue
            nodelist = "" if job.state == "PENDING" else job.nodelist
            lines.append(
                f"{job.job_id}|{job.name}|{job.state}|{job.reason}|{nodelist}|{job.partition}|"
                f"UNLIMITED|{job.user}|{job.comment}"
            )
        return 0, "".join(line + "\n" for line in lines), ""

    def scontrol(self, args, stdin):
        assert args[:3] == ["show", "job", "-o"]
        job = self.jobs.get(args[3])
        if job is None:
            return 1, "", "slurm_load_jobs error: Invalid job id specified\n"
        comment = "" if job.comment == "(null)" else f"Comment={job.comment}  "
        nodelist = "" if job.state == "PENDING" else job.nodelist
        return (
            0,
            f"JobId={job.job_id} JobName={job.name} UserId={job.user}(0) GroupId=root(0) "
            f"JobState={job.state} Reason={job.reason} ExitCode={job.exit_code} "
            f"Partition={job.partition} NodeList={nodelist} Command=(null) WorkDir=/tmp "
            f"{comment}StdErr={job.stdout} StdIn=/dev/null StdOut={job.stdout} Power= \n",
            "",
        )

    def scancel(self, args, stdin):
        for job_id in args:
            self.jobs[job_id].state = "CANCELLED"
        return 0, "", ""


@pytest.fixture
def slurm_cli(monkeypatch):
    cli = FakeSlurmCLI()
    run_command_kwargs: list[dict] = []

    def fake_run_command(self, args, **kwargs):
        run_command_kwargs.append(kwargs)
        assert isinstance(args, list), "SLURM commands must be argument lists"
        assert not kwargs.get("use_unsafe_shell")
        # What the real run_command does to argument lists unless told not to:
        if kwargs.get("expand_user_and_vars", True):
            args = [os.path.expanduser(os.path.expandvars(arg)) for arg in args]
        data = kwargs.get("data")
        if data is not None and not kwargs.get("binary_data"):
            data += "\n"
        return cli(args, data)

    def exit_json(self, **result):
        raise ExitJson(result)

    def fail_json(self, msg, **result):
        raise FailJson({"msg": msg, **result})

    monkeypatch.setattr(basic.AnsibleModule, "run_command", fake_run_command)
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    cli.run_command_kwargs = run_command_kwargs
    return cli


def run_module(args: dict, check: bool = False, diff: bool = False) -> dict:
    args = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
    with patch_module_args(args), pytest.raises(ExitJson) as done:
        slurm_job.main()
    return done.value.args[0]


def fail_module(args: dict, check: bool = False) -> dict:
    args = dict(args, _ansible_check_mode=check)
    with patch_module_args(args), pytest.raises(FailJson) as failed:
        slurm_job.main()
    return failed.value.args[0]


# --- state: present --------------------------------------------------------------------------


def test_present_submits_with_an_argument_list_and_the_script_on_stdin(slurm_cli):
    result = run_module(
        {
            "session": "s1",
            "role": "service",
            "ports": [11434, 8080],
            "script": SCRIPT,
            "partition": "debug",
            "cpus_per_task": 1,
            "time": "00:05:00",
            "output": "/tmp/x-%j.out",
            "extra_args": ["--exclusive"],
        }
    )
    assert result["changed"] is True
    assert result["job_id"] == "100"
    assert result["state"] == "RUNNING"
    assert result["nodes"] == ["node1"]
    assert result["stdout_path"] == "/tmp/x-100.out"
    assert result["job"]["session"] == "s1"
    assert result["job"]["role"] == "service"
    assert result["job"]["ports"] == [11434, 8080]
    (sbatch,) = slurm_cli.commands("sbatch")
    assert sbatch == [
        "sbatch",
        "--parsable",
        "--job-name=hpcansible-s1-service",
        "--partition=debug",
        "--time=00:05:00",
        "--cpus-per-task=1",
        "--comment=hpcansible:session=s1;role=service;ports=11434,8080",
        "--output=/tmp/x-%j.out",
        "--exclusive",
    ]
    assert result["sbatch_argv"] == sbatch
    assert result["script"] == SCRIPT
    assert slurm_cli.jobs["100"].script.startswith(SCRIPT)
    assert "diff" not in result


def test_present_is_idempotent_for_an_active_job_of_the_same_name_and_session(slurm_cli):
    args = {"name": "svc", "session": "s1", "role": "service", "script": SCRIPT}
    first = run_module(args)
    second = run_module(args)
    assert first["changed"] is True
    assert second["changed"] is False
    assert second["job_id"] == first["job_id"]
    assert second["nodes"] == ["node1"]
    assert len(slurm_cli.commands("sbatch")) == 1


def test_present_idempotence_sees_a_pending_job(slurm_cli):
    slurm_cli.add("svc", comment="hpcansible:session=s1;role=service", state="PENDING",
                  reason="Resources")  # fmt: skip
    result = run_module({"name": "svc", "session": "s1", "script": SCRIPT})
    assert (result["changed"], result["job_id"], result["state"]) == (False, "100", "PENDING")
    assert result["reason"] == "Resources"
    assert slurm_cli.commands("sbatch") == []


def test_present_same_name_other_session_or_finished_job_submits_again(slurm_cli):
    slurm_cli.add("svc", comment="hpcansible:session=other;role=service")
    slurm_cli.add("svc", comment="hpcansible:session=s1;role=service", state="COMPLETED")
    slurm_cli.add("svc")  # untagged, e.g. submitted by hand
    result = run_module({"name": "svc", "session": "s1", "role": "service", "script": SCRIPT})
    assert result["changed"] is True
    assert result["job_id"] == "103"
    assert len(slurm_cli.commands("sbatch")) == 1


def test_present_without_session_matches_an_untagged_job_of_the_same_name(slurm_cli):
    slurm_cli.add("plain")
    assert run_module({"name": "plain", "script": SCRIPT})["changed"] is False
    assert slurm_cli.commands("sbatch") == []


def test_check_mode_never_calls_sbatch_and_returns_the_script_in_diff(slurm_cli):
    result = run_module(
        {"session": "s1", "role": "client", "script": SCRIPT, "wait_for": "running"},
        check=True,
        diff=True,
    )
    assert result["changed"] is True
    assert result["state"] == "WOULD_SUBMIT"
    assert result["job_id"] is None
    assert result["diff"] == {
        "before": "",
        "after": SCRIPT,
        "after_header": "sbatch job hpcansible-s1-client",
    }
    assert "--job-name=hpcansible-s1-client" in result["sbatch_argv"]
    assert slurm_cli.commands("sbatch") == []
    assert slurm_cli.commands("scontrol") == []  # and it does not wait either


def test_check_mode_without_diff_has_no_diff(slurm_cli):
    result = run_module({"name": "n", "script": SCRIPT}, check=True)
    assert "diff" not in result
    assert slurm_cli.commands("sbatch") == []


def test_check_mode_reports_an_existing_job_unchanged(slurm_cli):
    slurm_cli.add("hpcansible-s1-service", comment="hpcansible:session=s1;role=service")
    result = run_module({"session": "s1", "role": "service", "script": SCRIPT}, check=True)
    assert (result["changed"], result["job_id"]) == (False, "100")
    assert slurm_cli.commands("sbatch") == []


def test_diff_mode_on_a_real_submission(slurm_cli):
    result = run_module({"name": "d", "script": SCRIPT}, diff=True)
    assert result["changed"] is True
    assert result["diff"]["after"] == SCRIPT


def test_values_reach_sbatch_verbatim(slurm_cli, monkeypatch):
    monkeypatch.setenv("HOME", "/home/someone")
    hostile = "x; rm -rf ~ $HOME `id` $(id) ~root"
    result = run_module(
        {"name": hostile, "session": "s1", "comment": hostile, "script": SCRIPT, "chdir": "/tmp"}
    )
    (sbatch,) = slurm_cli.commands("sbatch")
    assert f"--job-name={hostile}" in sbatch
    assert f"--comment=hpcansible:session=s1;role=job {hostile}" in sbatch
    assert slurm_cli.jobs[result["job_id"]].name == hostile
    assert all(
        kwargs.get("expand_user_and_vars") is False for kwargs in slurm_cli.run_command_kwargs
    )


def test_script_path_is_read_on_the_target(slurm_cli, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\necho from file\n")
    result = run_module({"name": "f", "script_path": str(script)})
    assert result["script"] == "#!/bin/sh\necho from file\n"
    assert slurm_cli.jobs[result["job_id"]].script.startswith("#!/bin/sh\necho from file")


def test_missing_script_path_fails(slurm_cli, tmp_path):
    result = fail_module({"name": "f", "script_path": str(tmp_path / "nope.sh")})
    assert "cannot read script_path" in result["msg"]
    assert slurm_cli.commands("sbatch") == []


def test_sbatch_error_is_slurm_s_own_line(slurm_cli):
    slurm_cli.sbatch_error = (
        "sbatch: error: invalid partition specified: nope\n"
        "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
    )
    result = fail_module({"name": "p", "partition": "nope", "script": SCRIPT})
    assert result["msg"] == "sbatch: Invalid partition name specified"


def test_script_without_shebang_fails_with_sbatch_s_explanation(slurm_cli):
    result = fail_module({"name": "p", "script": "hostname\n"})
    assert "This does not look like a batch script" in result["msg"]


@pytest.mark.parametrize(
    "args",
    [
        {"session": "x; rm -rf ~", "script": SCRIPT},
        {"session": "my session", "script": SCRIPT},
        {"session": "s1", "role": "a b", "script": SCRIPT},
    ],
)
def test_unsafe_session_or_role_fails_before_sbatch(slurm_cli, args):
    assert "must be 1-64 letters" in fail_module(args)["msg"]
    assert slurm_cli.calls == []


def test_wait_running_returns_the_expanded_nodes(slurm_cli):
    slurm_cli.schedule = lambda options: ("RUNNING", "None", "node[2-3]")
    result = run_module({"name": "w", "script": SCRIPT, "nodes": "2", "wait_for": "running"})
    assert result["state"] == "RUNNING"
    assert result["nodes"] == ["node2", "node3"]
    assert result["nodelist"] == "node[2-3]"


def test_wait_running_times_out_with_the_squeue_reason(slurm_cli):
    slurm_cli.schedule = lambda options: ("PENDING", "PartitionConfig", "")
    result = fail_module(
        {
            "name": "big",
            "script": SCRIPT,
            "cpus_per_task": 64,
            "wait_for": "running",
            "timeout": 0.05,
            "poll_interval": 0.01,
        }
    )
    assert "still PENDING after 0.05 s: reason PartitionConfig" in result["msg"]
    assert result["state"] == "PENDING"
    assert result["reason"] == "PartitionConfig"
    assert result["job_id"] == "100"
    assert result["changed"] is True  # it was submitted


def test_wait_completed_failure_shows_state_exit_code_and_output_tail(slurm_cli, tmp_path):
    out = tmp_path / "fail-%j.out"
    (tmp_path / "fail-100.out").write_text("starting\nMARKER-7f3 about to fail\n")
    slurm_cli.schedule = lambda options: ("FAILED", "NonZeroExitCode", "node2")
    slurm_cli.exit_code = "3:0"
    result = fail_module(
        {"name": "f", "script": SCRIPT, "output": str(out), "wait_for": "completed"}
    )
    assert "job 100 (f) FAILED, reason NonZeroExitCode, exit code 3:0" in result["msg"]
    assert result["exit_code"] == "3:0"
    assert "MARKER-7f3 about to fail" in result["msg"]
    assert result["state"] == "FAILED"


def test_wait_completed_success(slurm_cli):
    slurm_cli.schedule = lambda options: ("COMPLETED", "None", "node1")
    result = run_module({"name": "ok", "script": SCRIPT, "wait_for": "completed"})
    assert (result["changed"], result["state"], result["exit_code"]) == (True, "COMPLETED", "0:0")


# --- state: absent ---------------------------------------------------------------------------


def add_session(cli: FakeSlurmCLI) -> None:
    cli.add("svc", comment="hpcansible:session=s1;role=service;ports=80")  # 100
    cli.add("cli", comment="hpcansible:session=s1;role=client", nodelist="node2")  # 101
    cli.add("prom", comment="hpcansible:session=s1;role=prometheus", state="PENDING")  # 102
    cli.add("svc", comment="hpcansible:session=s2;role=service")  # 103, another session
    cli.add("svc")  # 104, untagged
    cli.add("old", comment="hpcansible:session=s1;role=client", state="COMPLETED")  # 105


def test_absent_by_session_cancels_every_active_job_of_the_session(slurm_cli):
    add_session(slurm_cli)
    result = run_module({"state": "absent", "session": "s1", "poll_interval": 0.01})
    assert result["changed"] is True
    assert sorted(result["cancelled"]) == ["100", "101", "102"]
    assert slurm_cli.commands("scancel") == [["scancel", "100", "101", "102"]]
    assert slurm_cli.jobs["103"].state == "RUNNING"
    assert slurm_cli.jobs["104"].state == "RUNNING"
    assert {job["role"] for job in result["jobs"]} == {"service", "client", "prometheus"}


def test_absent_by_session_and_role(slurm_cli):
    add_session(slurm_cli)
    result = run_module({"state": "absent", "session": "s1", "role": "client"})
    assert result["cancelled"] == ["101"]
    assert slurm_cli.jobs["100"].state == "RUNNING"


def test_absent_by_name_within_a_session(slurm_cli):
    add_session(slurm_cli)
    result = run_module({"state": "absent", "name": "svc", "session": "s2"})
    assert result["cancelled"] == ["103"]


def test_absent_by_name_only(slurm_cli):
    add_session(slurm_cli)
    result = run_module({"state": "absent", "name": "svc"})
    assert sorted(result["cancelled"]) == ["100", "103", "104"]


def test_absent_by_job_id(slurm_cli):
    add_session(slurm_cli)
    assert run_module({"state": "absent", "job_id": "101"})["cancelled"] == ["101"]
    assert run_module({"state": "absent", "job_id": "101"})["changed"] is False
    assert run_module({"state": "absent", "job_id": "99999"})["changed"] is False


def test_absent_when_nothing_runs_is_unchanged(slurm_cli):
    result = run_module({"state": "absent", "session": "nothing-here"})
    assert (result["changed"], result["cancelled"]) == (False, [])
    assert slurm_cli.commands("scancel") == []


def test_absent_check_mode_cancels_nothing(slurm_cli):
    add_session(slurm_cli)
    result = run_module({"state": "absent", "session": "s1"}, check=True)
    assert result["changed"] is True
    assert sorted(result["cancelled"]) == ["100", "101", "102"]
    assert slurm_cli.commands("scancel") == []


def test_absent_fails_when_jobs_stay_active(slurm_cli, monkeypatch):
    add_session(slurm_cli)
    monkeypatch.setattr(FakeSlurmCLI, "scancel", lambda self, args, stdin: (0, "", ""))
    result = fail_module(
        {"state": "absent", "job_id": "100", "timeout": 0.05, "poll_interval": 0.01}
    )
    assert "jobs 100 still active 0.05 s after scancel" in result["msg"]


# --- state: info -----------------------------------------------------------------------------


def test_info_by_session_lists_the_jobs(slurm_cli):
    add_session(slurm_cli)
    result = run_module({"state": "info", "session": "s1"})
    assert result["changed"] is False
    assert [job["job_id"] for job in result["jobs"]] == ["100", "101", "102"]
    assert "job_id" not in result  # several jobs: no single job's fields
    assert slurm_cli.commands("scancel") == []


def test_info_by_job_id_reads_one_job_even_finished(slurm_cli):
    add_session(slurm_cli)
    result = run_module({"state": "info", "job_id": "105"})
    assert (result["job_id"], result["state"], result["changed"]) == ("105", "COMPLETED", False)
    assert result["job"]["session"] == "s1"


def test_info_by_session_and_role(slurm_cli):
    add_session(slurm_cli)
    result = run_module({"state": "info", "session": "s1", "role": "service"})
    assert (result["job_id"], result["nodes"]) == ("100", ["node1"])


def test_info_of_unknown_job(slurm_cli):
    result = run_module({"state": "info", "job_id": "424242"})
    assert result["jobs"] == []
    assert "job_id" not in result


# --- argument validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"name": "x"}, "state is present but any of the following are missing"),
        ({"name": "x", "script": SCRIPT, "script_path": "/x"}, "mutually exclusive"),
        ({"state": "absent"}, "state is absent but any of the following are missing"),
        ({"state": "info", "role": "service"}, "state is info but any of the following"),
        ({"name": "x", "script": SCRIPT, "wait_for": "forever"}, "value of wait_for must be"),
    ],
)
def test_argument_validation(slurm_cli, args, message):
    assert message in fail_module(args)["msg"]
    assert slurm_cli.calls == []


def test_documentation_is_valid_yaml_listing_every_option():
    import yaml

    documented = yaml.safe_load(slurm_job.DOCUMENTATION)["options"]
    with patch_module_args({"name": "x", "script": SCRIPT}):
        captured = {}

        class Stop(Exception):
            pass

        def capture(**kwargs):
            captured.update(kwargs)
            raise Stop

        original = basic.AnsibleModule.__init__
        try:
            basic.AnsibleModule.__init__ = lambda self, **kwargs: capture(**kwargs)
            with pytest.raises(Stop):
                slurm_job.main()
        finally:
            basic.AnsibleModule.__init__ = original
    spec = captured["argument_spec"]
    assert set(documented) == set(spec)
    for name, option in spec.items():
        assert documented[name].get("type", "str") == option.get("type", "str"), name
        assert documented[name].get("default") == option.get("default"), name
    yaml.safe_load(slurm_job.EXAMPLES)
    yaml.safe_load(slurm_job.RETURN)
