"""Run the project's playbooks through ansible-runner: one place that knows how."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hpcansible.paths import ANSIBLE_CFG, PLAYBOOKS, PROJECT_ROOT, venv_bin
from hpcansible.processes import end_descendants

EventHandler = Callable[[dict[str, Any]], None]
MITOGEN_STRATEGY = "hpcansible.hpc.mitogen_unpinned"


@dataclass
class PlaybookResult:
    status: str
    rc: int
    failures: list[str] = field(default_factory=list)
    debug_messages: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0


def ansible_environment() -> dict[str, str]:
    """ansible-runner starts `ansible-playbook` from PATH: put this interpreter's bin first."""
    path = os.environ.get("PATH", "")
    return {
        "PATH": f"{venv_bin()}{os.pathsep}{path}",
        "ANSIBLE_CONFIG": str(ANSIBLE_CFG),
        "ANSIBLE_COLLECTIONS_PATH": str(PROJECT_ROOT / "collections"),
        "ANSIBLE_ROLES_PATH": str(PROJECT_ROOT / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        **strategy_environment(),
    }


def strategy_environment() -> dict[str, str]:
    """Mitogen's strategy where it is installed: it keeps one Python per host and runs each
    module in it instead of copying and starting a new interpreter per task, which is most of
    a session's own time (tests/bench/bench_session.py measures both). The collection's
    hpcansible.hpc.mitogen_unpinned is that strategy without its CPU pinning, which on a
    small login node puts Ansible and every task's worker on one CPU.
    HPCANSIBLE_ANSIBLE_STRATEGY=linear (or any other strategy) turns it off."""
    chosen = os.environ.get("HPCANSIBLE_ANSIBLE_STRATEGY", MITOGEN_STRATEGY)
    if chosen != MITOGEN_STRATEGY:
        return {"ANSIBLE_STRATEGY": chosen}
    if importlib.util.find_spec("ansible_mitogen") is None:
        return {}
    return {"ANSIBLE_STRATEGY": MITOGEN_STRATEGY}


def failure_message(event: Mapping[str, Any]) -> str:
    """The one line a failed task has to say: its `msg`, else stderr, else the task name."""
    data = event.get("event_data", {})
    result = data.get("res", {}) or {}
    msg = result.get("msg") or result.get("stderr") or result.get("reason") or ""
    if not msg and isinstance(result.get("results"), list):
        msg = next(
            (r.get("msg") for r in result["results"] if r.get("failed") and r.get("msg")), ""
        )
    return str(msg).strip() or f"task '{data.get('task', '?')}' failed"


# --- recipes are data (issue 12 item 1): what the user hands in is never a template ---------


class _UnsafeDumper(yaml.SafeDumper):
    """YAML in which every string is tagged !unsafe: Ansible then never templates it."""


_UnsafeDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar("!unsafe", value, style='"')
)


def write_unsafe_extravars(data_dir: Path, extravars: Mapping[str, Any]) -> None:
    """ansible-runner passes `env/extravars` as `-e @file`. Ansible 2.19 trusts extra vars as
    templates, so a session id or a recipe path holding `{{ lookup('pipe', ...) }}` would run
    on the controller; tagged !unsafe they stay the text they are."""
    path = data_dir / "env" / "extravars"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        yaml.dump(dict(extravars), handle, Dumper=_UnsafeDumper, allow_unicode=True)


# --- end of recipes are data ------------------------------------------------------------------


def run_playbook(
    playbook: str,
    extravars: Mapping[str, Any] | None = None,
    *,
    inventory: list[Path] | None = None,
    private_data_dir: Path | None = None,
    check: bool = False,
    verbose: bool = False,
    log_path: Path | None = None,
    on_event: EventHandler | None = None,
    cancel: Callable[[], bool] | None = None,
) -> PlaybookResult:
    import ansible_runner  # imported late: it is slow and most subcommands never need it

    failures: list[str] = []
    debug_messages: dict[str, Any] = {}

    def handle(event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        if kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            failures.append(failure_message(event))
        elif kind == "runner_on_ok" and data.get("task_action") in (
            "debug",
            "ansible.builtin.debug",
        ):
            result = data.get("res", {})
            if "msg" in result:
                debug_messages[data.get("task", "")] = result["msg"]
        if on_event is not None:
            on_event(event)
        # ansible-runner drops the event unless the handler returns True.
        return True

    envvars = ansible_environment()
    if log_path is not None:
        envvars["ANSIBLE_LOG_PATH"] = str(log_path)
    cmdline = "--check --diff" if check else None
    with contextlib.ExitStack() as cleanup:
        if private_data_dir is None:  # removed afterwards: nothing is left in /tmp
            data_dir = Path(
                cleanup.enter_context(tempfile.TemporaryDirectory(prefix="hpcansible-runner-"))
            )
        else:
            data_dir = private_data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        write_unsafe_extravars(data_dir, extravars or {})
        try:
            runner = start_runner(ansible_runner, data_dir, playbook, inventory, envvars,
                                  cmdline, verbose, handle, cancel)  # fmt: skip
        finally:
            if cancel is not None and cancel():
                # A cancelled ansible-runner may leave ansible-playbook (and its workers)
                # behind, blocked on a pipe nobody reads: no child outlives the CLI.
                end_descendants(grace_s=2.0)
    return PlaybookResult(
        status=runner.status, rc=runner.rc, failures=failures, debug_messages=debug_messages
    )


def start_runner(ansible_runner, data_dir, playbook, inventory, envvars, cmdline, verbose,
                 handle, cancel):  # fmt: skip
    return ansible_runner.run(
        private_data_dir=str(data_dir),
        playbook=str(PLAYBOOKS / playbook),
        inventory=[str(path) for path in (inventory or [PROJECT_ROOT / "inventory" / "testbed"])],
        envvars=envvars,
        cmdline=cmdline,
        quiet=not verbose,
        event_handler=handle,
        cancel_callback=cancel,
        project_dir=str(PROJECT_ROOT),
        suppress_env_files=True,
        # How often ansible-runner asks `cancel`: Ctrl-C must stop Ansible within a second.
        settings={"pexpect_timeout": 0.5},
    )


def run_checklist(
    playbook: str,
    extravars: Mapping[str, Any],
    report_task: str,
    what: str,
    *,
    inventory: list[Path] | None = None,
    verbose: bool = False,
) -> int:
    """Run a playbook whose `report_task` debug prints a checklist; 1 when the playbook failed."""
    import sys

    result = run_playbook(playbook, extravars, inventory=inventory, verbose=verbose)
    for line in result.debug_messages.get(report_task, []):
        print(line)
    if not result.ok:
        reason = result.failures[-1] if result.failures else f"ansible-runner {result.status}"
        print(f"hpcansible: {what} failed: {reason.strip()}", file=sys.stderr)
        return 1
    return 0
