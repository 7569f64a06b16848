"""The `python -m hpcansible` command line: parser, progress, sessions, recipes, tunnel, exit codes.

Nothing here runs Ansible, SLURM or SSH: ansible-runner events are synthetic and
subprocess.run is replaced where a command would be run.
"""

from __future__ import annotations

import argparse
import io
import re
import shlex
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipes import (
    RecipeError,
    load_service,
)
from hpcansible import cli, cluster, progress, run, sessions, status, tunnel
from hpcansible.errors import StepFailed, UserError
from hpcansible.paths import INVENTORY

ROOT = Path(__file__).resolve().parents[2]
SUBCOMMANDS = {
    "run",
    "status",
    "list",
    "stop",
    "logs",
    "tunnel",
    "prometheus",
    "doctor",
    "testbed",
    "bench",
}


# --- the parser ------------------------------------------------------------------------------


def subcommands(parser: argparse.ArgumentParser) -> set[str]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(action.choices)


def test_parser_lists_every_subcommand() -> None:
    assert subcommands(cli.build_parser()) >= SUBCOMMANDS


def test_help_names_every_subcommand() -> None:
    text = cli.build_parser().format_help()
    for name in SUBCOMMANDS:
        assert re.search(rf"^\s+{name}\s", text, re.MULTILINE), name


@pytest.mark.parametrize("code", ["0", "1", "2", "130"])
def test_epilog_documents_exit_code(code: str) -> None:
    text = cli.build_parser().format_help()
    assert "exit codes:" in text
    assert re.search(rf"^\s+{code}\s+\S", text, re.MULTILINE)


def test_a_subcommand_is_required() -> None:
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args([])
    assert exited.value.code == 2


# --- progress --------------------------------------------------------------------------------


def play(name: str) -> dict:
    return {"event": "playbook_on_play_start", "event_data": {"play": name}}


def task(name: str) -> dict:
    return {"event": "playbook_on_task_start", "event_data": {"task": name}}


def failed(name: str, **data) -> dict:
    return {"event": "runner_on_failed", "event_data": {"task": name, **data}}


def feed(*events: dict, ok: bool | None = None) -> tuple[progress.StepProgress, list[str]]:
    stream = io.StringIO()
    steps = progress.StepProgress(stream=stream)
    for event in events:
        steps.handle(event)
    if ok is not None:
        steps.close(ok=ok)
    return steps, stream.getvalue().splitlines()


STEP_LINE = re.compile(r"^\[(\d)/6\] (.+?)\s+(done|failed|stopped)\s+\d+\.\d+s$")


def finished(line: str) -> tuple[str, str, str]:
    match = STEP_LINE.match(line)
    assert match, line
    return match.groups()


def test_progress_prints_start_and_done_lines() -> None:
    steps, lines = feed(
        play("[0/6] Resolve the recipes"),
        play("[1/6] Start the service"),
        task("Submit the job"),
        play("[2/6] Detect the service"),
        ok=True,
    )
    assert lines[0] == "[1/6] Start the service ..."
    assert finished(lines[1]) == ("1", "Start the service", "done")
    assert lines[2] == "[2/6] Detect the service ..."
    assert finished(lines[3]) == ("2", "Detect the service", "done")
    assert len(lines) == 4
    assert steps.steps_done == [1, 2]
    assert not steps.failed


def test_progress_step_zero_prints_nothing() -> None:
    _, lines = feed(play("[0/6] Resolve the recipes"), task("Read and check the recipes"))
    assert lines == []


def test_progress_stop_task_fails_the_step_and_ignores_what_follows() -> None:
    steps, lines = feed(
        play("[1/6] Start the service"),
        play("[2/6] Detect the service"),
        task("Stop the session with the reason"),
        failed("Stop the session with the reason"),
        play("[3/6] Start the client"),
        task("Submit"),
        failed("Stop the session with the reason"),
        ok=False,
    )
    assert finished(lines[1]) == ("1", "Start the service", "done")
    assert lines[2] == "[2/6] Detect the service ..."
    assert finished(lines[3]) == ("2", "Detect the service", "failed")
    assert len(lines) == 4  # nothing about step 3, no "stopped" line from close()
    assert steps.failed
    assert steps.steps_done == [1]


def test_progress_rescued_failure_inside_a_step_is_not_terminal() -> None:
    steps, lines = feed(
        play("[2/6] Detect the service"),
        failed("Wait until the job runs"),
        play("[3/6] Start the client"),
    )
    assert not steps.failed
    assert finished(lines[1]) == ("2", "Detect the service", "done")


def test_progress_ignored_errors_are_not_terminal() -> None:
    steps, _ = feed(
        play("[1/6] Start the service"),
        failed("Stop the session with the reason", ignore_errors=True),
    )
    assert not steps.failed


def test_progress_failure_outside_a_step_is_terminal() -> None:
    steps, lines = feed(play("[0/6] Resolve the recipes"), failed("Read and check the recipes"))
    assert steps.failed
    assert lines == []


def test_progress_unreachable_is_terminal() -> None:
    steps, lines = feed(
        play("[1/6] Start the service"), {"event": "runner_on_unreachable", "event_data": {}}
    )
    assert steps.failed
    assert finished(lines[-1]) == ("1", "Start the service", "failed")


def test_progress_interrupted_step_is_stopped() -> None:
    _, lines = feed(play("[5/6] Start Prometheus"), ok=False)
    assert finished(lines[-1]) == ("5", "Start Prometheus", "stopped")


def test_progress_quiet_prints_nothing() -> None:
    stream = io.StringIO()
    steps = progress.StepProgress(stream=stream, quiet=True)
    steps.handle(play("[1/6] Start the service"))
    steps.close(ok=True)
    assert stream.getvalue() == ""
    assert steps.steps_done == [1]


# --- sessions --------------------------------------------------------------------------------

SESSION_ID = re.compile(r"^[a-z0-9_]+_\d{8}_\d{6}_[0-9a-f]{6}$")


@pytest.mark.parametrize(
    ("service", "stem"),
    [("ollama", "ollama"), ("Llama.cpp Server", "llama_cpp_server"), ("", "session")],
)
def test_new_session_id_format(service: str, stem: str) -> None:
    session_id = sessions.new_session_id(service)
    assert SESSION_ID.match(session_id), session_id
    assert session_id.startswith(f"{stem}_")


def test_new_session_id_is_unique() -> None:
    ids = {sessions.new_session_id("redis") for _ in range(3)}
    assert len(ids) == 3


def test_new_session_id_suffix_is_random(monkeypatch: pytest.MonkeyPatch) -> None:
    suffixes = iter(["00aa", "00bb"])
    monkeypatch.setattr(
        sessions.session_record_module().secrets, "token_hex", lambda n: next(suffixes)
    )
    first, second = sessions.new_session_id("redis"), sessions.new_session_id("redis")
    assert first.endswith("_00aa") and second.endswith("_00bb")


@pytest.mark.parametrize("profile", ["testbed", "testbed-ssh", "meluxina"])
def test_default_recipes_resolve_to_existing_files(profile: str) -> None:
    paths = sessions.default_recipes(sessions.profile_dir(profile))
    assert set(paths) == {"service", "client", "prometheus"}
    for path in paths.values():
        assert path.is_file(), path
        assert path.is_relative_to(ROOT / "recipes")


def test_default_recipes_of_testbed_are_llamacpp() -> None:
    paths = sessions.default_recipes(sessions.profile_dir("testbed"))
    assert paths["service"] == ROOT / "recipes" / "llamacpp" / "service.yml"


def test_profile_dir_by_name_and_by_path(tmp_path: Path) -> None:
    assert sessions.profile_dir("testbed") == (INVENTORY / "testbed").resolve()
    assert sessions.profile_dir(str(tmp_path)) == tmp_path.resolve()


def test_profile_dir_unknown_lists_known_profiles() -> None:
    with pytest.raises(UserError) as caught:
        sessions.profile_dir("nosuchsite")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("--profile nosuchsite: no such site profile")
    assert "known: meluxina, testbed" in message
    assert caught.value.exit_code == 2


# --- run: recipe arguments -------------------------------------------------------------------

TESTBED = INVENTORY / "testbed"


@pytest.mark.parametrize("given", [["a.yml"], ["a.yml", "b.yml"], ["a", "b", "c", "d"]])
def test_recipe_paths_wants_three_or_none(given: list[str]) -> None:
    with pytest.raises(UserError, match=r"give three recipes \(SERVICE CLIENT PROMETHEUS\)"):
        run.recipe_paths(argparse.Namespace(recipes=given), TESTBED)


def test_recipe_paths_missing_file(tmp_path: Path) -> None:
    service = tmp_path / "service.yml"
    service.write_text("service: {name: redis}\n")
    given = [str(service), str(tmp_path / "nope.yml"), str(service)]
    with pytest.raises(UserError) as caught:
        run.recipe_paths(argparse.Namespace(recipes=given), TESTBED)
    assert str(caught.value) == f"client recipe {tmp_path / 'nope.yml'}: no such file"


def test_recipe_paths_none_means_the_profile_defaults() -> None:
    paths = run.recipe_paths(argparse.Namespace(recipes=[]), TESTBED)
    assert paths == sessions.default_recipes(TESTBED)


def test_recipe_paths_three_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("s.yml", "c.yml", "p.yml"):
        (tmp_path / name).write_text("")
    monkeypatch.chdir(tmp_path)
    paths = run.recipe_paths(argparse.Namespace(recipes=["s.yml", "c.yml", "p.yml"]), TESTBED)
    assert paths == {
        "service": tmp_path / "s.yml",
        "client": tmp_path / "c.yml",
        "prometheus": tmp_path / "p.yml",
    }


def test_check_recipes_of_the_defaults() -> None:
    loaded = run.check_recipes(sessions.default_recipes(TESTBED))
    assert loaded["service"]["type"] == "llamacpp"
    assert loaded["client"]["api"] == "openai"


def test_check_recipes_turns_a_recipe_error_into_a_user_error(tmp_path: Path) -> None:
    paths = sessions.default_recipes(TESTBED)
    paths["service"] = tmp_path / "service.yml"
    paths["service"].write_text("service: {name: llamacpp, resourcs: {}}\n")
    with pytest.raises(RecipeError) as original:
        load_service(paths["service"])
    with pytest.raises(UserError) as caught:
        run.check_recipes(paths)
    assert str(caught.value) == str(original.value)
    assert "service.resourcs: unknown key (did you mean 'resources'?)" in str(caught.value)


def test_check_recipes_checks_the_pairing(tmp_path: Path) -> None:
    paths = sessions.default_recipes(TESTBED)
    paths["client"] = tmp_path / "client.yml"
    paths["client"].write_text("client: {target_service: {name: ollama}}\n")
    with pytest.raises(UserError, match=r"client\.target_service\.name: 'ollama'"):
        run.check_recipes(paths)


def test_check_recipes_checks_benchmark_parameters(tmp_path: Path) -> None:
    paths = sessions.default_recipes(TESTBED)
    paths["client"] = tmp_path / "client.yml"
    paths["client"].write_text("client: {parameters: {concurrancy: 2}}\n")
    with pytest.raises(UserError, match="unknown benchmark parameter"):
        run.check_recipes(paths)


# --- status ----------------------------------------------------------------------------------


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def test_age_seconds() -> None:
    assert re.fullmatch(r"[5-9]s", status.age(ago(seconds=5)))


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        ({"seconds": 90}, "1m"),
        ({"minutes": 59, "seconds": 30}, "59m"),
        ({"hours": 2, "minutes": 5}, "2h"),
        ({"days": 3, "hours": 4}, "3d"),
    ],
)
def test_age_units(delta: dict, expected: str) -> None:
    assert status.age(ago(**delta)) == expected


def test_age_naive_timestamp_is_utc() -> None:
    naive = (datetime.now(UTC) - timedelta(hours=5)).replace(tzinfo=None).isoformat()
    assert status.age(naive) == "5h"


@pytest.mark.parametrize("created", ["", "yesterday", None])
def test_age_unreadable(created) -> None:
    assert status.age(created) == "?"


# --- tunnel ----------------------------------------------------------------------------------

TUNNEL = {
    "login_host": "login",
    "login_port": 8822,
    "login_user": "root",
    "remote_host": "node3",
    "remote_port": 9090,
}


def test_tunnel_argv() -> None:
    argv = tunnel.tunnel_argv(TUNNEL, 19090)
    assert argv[:4] == ["ssh", "-N", "-o", "ExitOnForwardFailure=yes"]
    assert argv[-5:] == ["-L", "127.0.0.1:19090:node3:9090", "-p", "8822", "root@login"]
    assert "BatchMode=yes" in argv


def test_tunnel_argv_without_user() -> None:
    argv = tunnel.tunnel_argv({**TUNNEL, "login_user": ""}, 20000)
    assert argv[-1] == "login"
    assert "127.0.0.1:20000:node3:9090" in argv


def test_open_tunnel_without_tunnel_is_a_user_error() -> None:
    with pytest.raises(UserError, match="no tunnel yet"):
        tunnel.open_tunnel({"id": "s1"}, detach=False)


def test_close_tunnel_without_pid() -> None:
    assert tunnel.close_tunnel({"id": "s1"}) is False


# --- main: exit codes ------------------------------------------------------------------------


@pytest.fixture
def main_signals():
    """cli.main installs SIGTERM/SIGHUP handlers; put pytest's back afterwards."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGHUP)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def fail_with(error: BaseException):
    def func(args: argparse.Namespace) -> int:
        raise error

    return func


@pytest.mark.usefixtures("main_signals")
def test_main_user_error_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(status, "show_list", fail_with(UserError("x.yml: service.port: bad")))
    assert cli.main(["list"]) == 2
    assert capsys.readouterr().err == "hpcansible: error: x.yml: service.port: bad\n"


@pytest.mark.usefixtures("main_signals")
def test_main_step_failed_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(status, "show_list", fail_with(StepFailed("step 2: job 7 pending")))
    assert cli.main(["list"]) == 1
    assert capsys.readouterr().err == "hpcansible: error: step 2: job 7 pending\n"


@pytest.mark.usefixtures("main_signals")
def test_main_internal_error_exits_1_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("HPCANSIBLE_DEBUG", raising=False)
    monkeypatch.setattr(status, "show_list", fail_with(KeyError("boom")))
    assert cli.main(["list"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1
    assert err.startswith("hpcansible: internal error: KeyError: 'boom'")
    assert "HPCANSIBLE_DEBUG=1" in err


@pytest.mark.usefixtures("main_signals")
def test_main_internal_error_with_debug_shows_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("HPCANSIBLE_DEBUG", "1")
    monkeypatch.setattr(status, "show_list", fail_with(KeyError("boom")))
    assert cli.main(["list"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "hpcansible: internal error: KeyError: 'boom'" in err


@pytest.mark.usefixtures("main_signals")
def test_main_interrupt_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(status, "show_list", fail_with(KeyboardInterrupt()))
    assert cli.main(["list"]) == 130
    assert capsys.readouterr().err == "hpcansible: interrupted\n"


@pytest.mark.usefixtures("main_signals")
def test_main_returns_the_subcommand_result(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status, "show_list", lambda args: 0)
    assert cli.main(["list"]) == 0


def test_main_usage_error_exits_2(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "--no-such-option"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


# --- cluster ---------------------------------------------------------------------------------


def test_login_host_of_meluxina() -> None:
    assert cluster.login_host(INVENTORY / "meluxina") == cluster.LoginHost("login.lxp.lu", 8822, "")


def test_login_host_of_testbed_is_local() -> None:
    assert cluster.login_host(INVENTORY / "testbed") is None


def test_login_host_with_user(tmp_path: Path) -> None:
    (tmp_path / "session.slurm_jobs.yml").write_text(
        "plugin: hpcansible.hpc.slurm_jobs\nlogin_host: login\nlogin_port: 8822\nlogin_user: u1\n"
    )
    assert cluster.login_host(tmp_path) == cluster.LoginHost("login", 8822, "u1")


class FakeRun:
    """Stands in for subprocess.run and records each command."""

    def __init__(self, stdout: str = "", returncode: int = 0) -> None:
        self.stdout, self.returncode = stdout, returncode
        self.calls: list[tuple[list[str], dict]] = []

    def __call__(self, command, **kwargs):
        self.calls.append((list(command), kwargs))
        return subprocess.CompletedProcess(command, self.returncode, self.stdout, "")


def test_command_runner_over_ssh_shlex_joins_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRun(stdout="13|job\n")
    monkeypatch.setattr(subprocess, "run", fake)
    runner = cluster.command_runner(cluster.LoginHost("login", 8822, "root"))
    argv = ["squeue", "-h", "-o", "%i|%j", "--name", "x; rm -rf ~", "$(touch CANARY)"]
    assert runner(argv) == (0, "13|job\n", "")
    ((command, kwargs),) = fake.calls
    assert command == [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        "-p",
        "8822",
        "-l",
        "root",
        "login",
        "--",
        shlex.join(argv),
    ]
    assert shlex.split(command[-1]) == argv
    assert kwargs["timeout"] == 30
    assert "shell" not in kwargs


def test_command_runner_over_ssh_without_port_and_user(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRun()
    monkeypatch.setattr(subprocess, "run", fake)
    cluster.command_runner(cluster.LoginHost("login.lxp.lu"))(["scancel", "12"])
    assert fake.calls[0][0][-3:] == ["login.lxp.lu", "--", "scancel 12"]
    assert "-p" not in fake.calls[0][0] and "-l" not in fake.calls[0][0]


def test_command_runner_passes_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRun()
    monkeypatch.setattr(subprocess, "run", fake)
    cluster.command_runner(cluster.LoginHost("login"))(["sbatch", "--parsable"], stdin="#!/bin/sh")
    assert fake.calls[0][1]["input"] == "#!/bin/sh"


def test_command_runner_local_passes_argv_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRun()
    monkeypatch.setattr(subprocess, "run", fake)
    cluster.command_runner(None)(["squeue", "--name", "a b"])
    assert fake.calls[0][0] == ["squeue", "--name", "a b"]


def test_command_runner_local_missing_program() -> None:
    code, out, err = cluster.command_runner(None)(["hpcansible-no-such-program-xyz"])
    assert code == 127
    assert out == ""
    assert err.startswith("hpcansible-no-such-program-xyz: not found")


def test_command_runner_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(command, **kwargs):
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    monkeypatch.setattr(subprocess, "run", slow)
    runner = cluster.command_runner(cluster.LoginHost("login"), timeout=2.5)
    assert runner(["squeue"]) == (124, "", "ssh: no answer within 2.5 s")


# --- status tells the truth (issue 12 item 4) ---------------------------------------------


def status_job(state: str = "RUNNING", node: str = "node1", recorded: str = "node1") -> dict:
    return {"job_id": "7", "state": state, "node": node, "recorded_node": recorded,
            "moved": node != recorded, "time_left": "", "reason": ""}  # fmt: skip


HEALTHY_RECORD = {
    "service_endpoint": "http://node1:8000",
    "service": {"exporter_job": "llamacpp-cadvisor"},
}
UP = [{"job": "llamacpp-cadvisor", "url": "http://node1:8080/metrics", "health": "up"}]


def test_a_running_session_on_its_nodes_is_healthy() -> None:
    jobs = {role: status_job() for role in status.ROLES}
    assert status.problems_of(HEALTHY_RECORD, jobs, UP) == []


@pytest.mark.parametrize("state", ["NODE_FAIL", "TIMEOUT", "PREEMPTED", "OUT_OF_MEMORY", "ENDED"])
def test_an_ended_job_is_named_with_its_state(state: str) -> None:
    jobs = {role: status_job() for role in status.ROLES}
    jobs["service"] = status_job(state)
    assert status.problems_of(HEALTHY_RECORD, jobs, UP) == [f"service job 7 is {state}"]


def test_a_moved_job_and_the_stale_endpoint_and_target_are_named() -> None:
    jobs = {role: status_job() for role in status.ROLES}
    jobs["service"] = status_job(node="node3", recorded="node1")
    found = status.problems_of(HEALTHY_RECORD, jobs, UP)
    assert found[0].startswith("service job 7 moved from node1 to node3")
    assert "endpoint http://node1:8000 is not the service's node node3" in found
    assert "target llamacpp-cadvisor scrapes node1, not the service's node node3" in found


def test_prometheus_that_does_not_answer_is_not_healthy() -> None:
    jobs = {role: status_job() for role in status.ROLES}
    assert status.problems_of(HEALTHY_RECORD, jobs, None) == ["Prometheus does not answer"]


@pytest.mark.usefixtures("main_signals")
def test_an_unreachable_slurm_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    error = cluster.slurm_error_class()(
        "squeue: slurm_load_jobs error: Unable to contact slurm controller (connect failure)"
    )
    monkeypatch.setattr(status, "show_list", fail_with(error))
    assert cli.main(["list"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hpcansible: error: SLURM: squeue: ")


@pytest.mark.usefixtures("main_signals")
def test_a_closed_stdout_ends_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(status, "show_list", fail_with(BrokenPipeError()))
    monkeypatch.setattr(cli.os, "dup2", lambda *args: None)
    monkeypatch.setattr(cli.sys.stdout, "fileno", lambda: 1)  # capsys has no real descriptor
    assert cli.main(["list"]) == 141
    assert capsys.readouterr().err == ""


def test_the_controller_wait_gives_up_with_slurms_words() -> None:
    slurm_utils = sessions.collection_module_utils("slurm")
    clock = iter(range(0, 100, 2))
    answers = iter([(1, "Slurmctld(primary) at vm is DOWN\n", "")] * 20)
    slurm = slurm_utils.Slurm(
        lambda argv, stdin=None: next(answers), clock=lambda: next(clock), sleep=lambda s: None
    )
    with pytest.raises(slurm_utils.SlurmError, match="controller does not answer"):
        slurm.wait_for_controller(10)
    up = slurm_utils.Slurm(lambda argv, stdin=None: (0, "Slurmctld(primary) at vm is UP\n", ""))
    up.ping()


def test_mitogen_is_used_where_installed_and_can_be_turned_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hpcansible import runner

    monkeypatch.delenv("HPCANSIBLE_ANSIBLE_STRATEGY", raising=False)
    assert runner.strategy_environment() == {"ANSIBLE_STRATEGY": "hpcansible.hpc.mitogen_unpinned"}
    monkeypatch.setenv("HPCANSIBLE_ANSIBLE_STRATEGY", "hpcansible.hpc.mitogen_unpinned")
    assert runner.strategy_environment() == {"ANSIBLE_STRATEGY": "hpcansible.hpc.mitogen_unpinned"}
    monkeypatch.setenv("HPCANSIBLE_ANSIBLE_STRATEGY", "linear")
    assert runner.strategy_environment() == {"ANSIBLE_STRATEGY": "linear"}


def test_the_mitogen_strategy_leaves_cpu_placement_to_the_kernel() -> None:
    import importlib.util as loader

    import ansible_mitogen.affinity
    import ansible_mitogen.strategy

    path = Path(__file__).resolve().parents[2] / "plugins" / "strategy" / "mitogen_unpinned.py"
    spec = loader.spec_from_file_location("hpcansible_test_mitogen_unpinned", path)
    assert spec is not None and spec.loader is not None
    plugin = loader.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    # Mitogen's own LinuxPolicy pins the strategy and every worker to one CPU on small hosts.
    assert type(ansible_mitogen.affinity.policy) is ansible_mitogen.affinity.Policy
    assert issubclass(plugin.StrategyModule, ansible_mitogen.strategy.StrategyMixin)
    assert plugin.StrategyModule.__mro__[2].__module__.endswith("strategy.linear")
