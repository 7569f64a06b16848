"""`python -m hpcansible run`: the session playbook through ansible-runner, with progress,
a session directory, and cleanup on Ctrl-C."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from hpcansible.errors import UserError
from hpcansible.progress import StepProgress
from hpcansible.runner import run_playbook
from hpcansible.sessions import (
    collection_module_utils,
    default_recipes,
    new_session_id,
    profile_dir,
    session_dir,
)

KINDS = ("service", "client", "prometheus")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a whole benchmarking session (the six steps)",
        description=(
            "Start the service with its exporter, detect it, start the benchmark client, "
            "configure and start Prometheus, and print the SSH tunnel to it. With no recipes, "
            "the site profile's defaults are used."
        ),
    )
    parser.add_argument("recipes", nargs="*", metavar="RECIPE", help="SERVICE CLIENT PROMETHEUS")
    parser.add_argument(
        "--profile", default="testbed", help="site profile under inventory/ or a path"
    )
    parser.add_argument(
        "--json", action="store_true", help="print session.json on stdout at the end"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="render recipes, scripts and prometheus.yml; submit nothing",
    )
    parser.add_argument("--session-id", help="name the session yourself (letters, digits, _)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show Ansible's output live")
    parser.set_defaults(func=run)


def recipe_paths(args: argparse.Namespace, profile: Path) -> dict[str, Path]:
    if len(args.recipes) not in (0, 3):
        raise UserError("give three recipes (SERVICE CLIENT PROMETHEUS) or none for the defaults")
    if not args.recipes:
        return default_recipes(profile)
    paths = {
        kind: Path(path).expanduser().resolve()
        for kind, path in zip(KINDS, args.recipes, strict=True)
    }
    for kind, path in paths.items():
        if not path.is_file():
            raise UserError(f"{kind} recipe {path}: no such file")
    return paths


def check_recipes(paths: dict[str, Path]) -> dict[str, Any]:
    """Fail fast, before Ansible starts, with the same checks the playbook makes."""
    recipes = collection_module_utils()
    try:
        from hpcansible.bench.config import OPTIONS_BY_NAME
    except ImportError:  # pragma: no cover - the client ships with the CLI
        OPTIONS_BY_NAME = None
    try:
        loaded = {
            "service": recipes.load_service(paths["service"]),
            "client": recipes.load_client(paths["client"], OPTIONS_BY_NAME),
            "prometheus": recipes.load_prometheus(paths["prometheus"]),
        }
        recipes.check_pairing(loaded["service"], loaded["client"])
    except recipes.RecipeError as error:
        raise UserError(str(error)) from None
    return loaded


class Interrupt:
    """Ctrl-C, SIGTERM and SIGHUP: tell ansible-runner to stop, then cancel the session's jobs."""

    def __init__(self) -> None:
        self.signal_name = ""
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Interrupt:
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _handle(self, number: int, frame: object) -> None:
        self.signal_name = signal.Signals(number).name

    def __call__(self) -> bool:
        return bool(self.signal_name)


def stop_session(session_id: str, profile: Path, reason: str, data_dir: Path) -> bool:
    result = run_playbook(
        "teardown.yml",
        {"hpcansible_session_id": session_id, "hpcansible_stop_reason": reason},
        inventory=[profile],
        private_data_dir=data_dir,
    )
    return result.ok


def run(args: argparse.Namespace) -> int:
    profile = profile_dir(args.profile)
    paths = recipe_paths(args, profile)
    loaded = check_recipes(paths)
    session_id = args.session_id or new_session_id(loaded["service"]["name"])
    directory = session_dir(session_id)
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    log_path = directory / "logs" / "ansible.log"
    runner_dir = directory / ".runner"
    print(f"session {session_id}  ({directory})", file=sys.stderr)
    progress = StepProgress(quiet=args.verbose)
    extravars = {
        "hpcansible_session_id": session_id,
        "hpcansible_recipes": {kind: str(path) for kind, path in paths.items()},
    }
    with Interrupt() as interrupt:
        try:
            result = run_playbook(
                "session.yml",
                extravars,
                inventory=[profile],
                private_data_dir=runner_dir,
                check=args.dry_run,
                verbose=args.verbose,
                log_path=log_path,
                on_event=progress.handle,
                cancel=interrupt,
            )
        finally:
            progress.close(ok=not interrupt())
        if interrupt():
            print(
                f"hpcansible: {interrupt.signal_name}: cancelling the session's jobs",
                file=sys.stderr,
            )
            mark_interrupted(directory, interrupt.signal_name)
            stop_session(session_id, profile, f"interrupted ({interrupt.signal_name})", runner_dir)
            return 130
    record = read_record(directory)
    if args.json:
        print(json.dumps(record, indent=2))
    if not result.ok:
        reason = result.failures[-1] if result.failures else f"ansible-runner {result.status}"
        print(f"hpcansible: {reason.splitlines()[0]}", file=sys.stderr)
        print(f"hpcansible: details: {log_path}", file=sys.stderr)
        return 1
    if not args.json:
        print_summary(record, args.dry_run)
    return 0


def read_record(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((directory / "session.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {"id": directory.name, "status": "unknown"}


def mark_interrupted(directory: Path, signal_name: str) -> None:
    record = read_record(directory)
    record.update(status="interrupted", interrupted_by=signal_name)
    (directory / "session.json").write_text(json.dumps(record, indent=2) + "\n")


def print_summary(record: dict[str, Any], dry_run: bool) -> None:
    if dry_run:
        where = record.get("session_dir")
        print(f"dry run: nothing submitted; job scripts and prometheus.yml in {where}")
        return
    jobs = record.get("jobs", {})
    for role in ("service", "client", "prometheus"):
        job = jobs.get(role, {})
        print(f"  {role:<11} job {job.get('job_id', '-'):<6} on {job.get('node', '-')}")
    print(f"  endpoint    {record.get('service_endpoint', '')}")
    print(f"  results     {record.get('results_dir', '')}")
    print(f"  prometheus  {record.get('prometheus', {}).get('url', '')}")
    print(f"  tunnel      {record.get('tunnel_command', '')}")
    print(f"  then open   {record.get('prometheus_url', '')}")
