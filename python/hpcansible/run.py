"""`python -m hpcansible run`: the session playbook through ansible-runner, with progress,
a session directory, and cleanup on Ctrl-C."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from hpcansible.cluster import cancel_session, command_runner, login_host, slurm_for
from hpcansible.errors import UserError
from hpcansible.progress import StepProgress
from hpcansible.prometheus_http import login_hint
from hpcansible.report.command import write_report_or_warn
from hpcansible.runner import run_playbook
from hpcansible.sessions import (
    claim_session,
    collection_module_utils,
    default_recipes,
    new_session_id,
    profile_dir,
    session_dir,
    session_record_module,
    update_record,
)
from hpcansible.stop import stop_session
from hpcansible.tunnel import close_tunnel, open_tunnel

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
    parser.add_argument(
        "--open-tunnel",
        action="store_true",
        help="open the SSH tunnel to Prometheus on a free local port and print its URL",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="stay until the client finishes, then collect the results and end the session",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="stay until the client finishes, write the report (live) and leave the session "
        "running for the tunnel (`stop` ends it)",
    )
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
        if path.is_dir():
            raise UserError(f"{kind} recipe {path}: is a folder, not a recipe file")
        if not path.is_file():
            raise UserError(f"{kind} recipe {path}: no such file")
    return paths


def check_recipes(paths: dict[str, Path]) -> dict[str, Any]:
    """Fail fast, before Ansible starts, with the same checks the playbook makes; print the
    notes (what a recipe asks for that is not used, a time limit shorter than the load)."""
    recipes = collection_module_utils("recipe_loaders")
    try:
        loaded = {kind: recipes.LOADERS[kind](paths[kind]) for kind in KINDS}
        recipes.check_pairing(loaded["service"], loaded["client"], loaded["prometheus"])
    except recipes.RecipeError as error:
        raise UserError(str(error)) from None
    for kind in KINDS:
        for note in loaded[kind]["warnings"]:
            print(f"note: {note}", file=sys.stderr)
    return loaded


def check_site_names(loaded: dict[str, Any], profile: Path) -> None:
    """Issue 10: the recipes' partitions and QoS against the site's, before Ansible starts
    (module_utils/site_names.py; the recipes action plugin applies the same rule)."""
    names = collection_module_utils("site_names")
    code, out, _ = command_runner(login_host(profile))(["sinfo", "-h", "-o", "%R"])
    partitions = names.parse_partitions(out) if code == 0 else None
    try:
        notes = names.check_site(loaded, names.profile_settings(profile), partitions)
    except names.RecipeError as error:
        raise UserError(str(error)) from None
    for note in notes:
        print(f"note: {note}", file=sys.stderr)


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


def run(args: argparse.Namespace) -> int:
    profile = profile_dir(args.profile)
    paths = recipe_paths(args, profile)
    loaded = check_recipes(paths)
    check_site_names(loaded, profile)
    session_id = args.session_id or new_session_id(loaded["service"]["name"])
    # Held while this command runs; a second run of the same id is refused here.
    lock = claim_session(session_id)  # noqa: F841 - released when the process exits
    directory = session_dir(session_id)
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    log_path = directory / "logs" / "ansible.log"
    print(f"session {session_id}  ({directory})", file=sys.stderr)
    progress = StepProgress(quiet=args.verbose)
    extravars = {
        "hpcansible_session_id": session_id,
        "hpcansible_profile": str(profile),
        "hpcansible_local_session_dir": str(directory),
        "hpcansible_recipes": {kind: str(path) for kind, path in paths.items()},
    }
    with Interrupt() as interrupt:
        try:
            result = run_playbook(
                "session.yml",
                extravars,
                inventory=[profile],
                private_data_dir=directory / ".runner",
                check=args.dry_run,
                verbose=args.verbose,
                log_path=log_path,
                on_event=progress.handle,
                cancel=interrupt,
            )
        finally:
            progress.close(ok=not interrupt())
        record = read_record(directory)
        if result.ok and not args.dry_run and not interrupt():
            if args.open_tunnel:
                record = keep_tunnel_open(directory, record)
            if args.wait:
                min_success = loaded["client"].get("min_success_rate", 0.95)
                record = wait_for_client(session_id, profile, directory, interrupt, min_success)
            elif args.report:
                wait_for_summary(session_id, profile, directory, interrupt)
                if not interrupt():
                    write_report_or_warn(directory)  # live: the session keeps running
                    record = read_record(directory)
        if interrupt():
            cancel_interrupted(session_id, profile, directory, interrupt.signal_name)
            return 130
    if not result.ok:
        if args.json:
            print(json.dumps(record, indent=2))
        reason = result.failures[-1] if result.failures else f"ansible-runner {result.status}"
        # In full: the step's message, the job log tail and the "still running ... stop with"
        # hint are what the user acts on.
        print(f"hpcansible: {reason.strip()}", file=sys.stderr)
        print(f"hpcansible: details: {log_path}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print_summary(record, args.dry_run)
    verdict = record.get("verdict") or {}
    for reason in verdict.get("reasons", []):
        print(f"hpcansible: the results are not what was measured for: {reason}", file=sys.stderr)
    return 1 if verdict and not verdict.get("ok") else 0


def cancel_interrupted(session_id: str, profile: Path, directory: Path, signal_name: str) -> None:
    print(f"hpcansible: {signal_name}: cancelling the session's jobs", file=sys.stderr)
    close_tunnel(read_record(directory))
    # Straight to scancel by tag, twice: a submission in flight when Ansible was killed may
    # land just after the first sweep.
    cancelled = cancel_session(profile, session_id)
    time.sleep(1)
    cancelled += cancel_session(profile, session_id)
    mark_interrupted(directory, signal_name, cancelled)


def keep_tunnel_open(directory: Path, record: dict[str, Any]) -> dict[str, Any]:
    """A tunnel that outlives this command; `stop` closes it."""
    process, url = open_tunnel(record, detach=True, log=directory / "logs" / "tunnel.log")
    record = update_record(directory, {"tunnel_pid": process.pid, "tunnel_url": url})
    print(
        f"tunnel open: {url}  ({login_hint(record)}; "
        f"closed by `python -m hpcansible stop {record['id']}`)",
        file=sys.stderr,
    )
    return record


def wait_for_summary(
    session_id: str, profile: Path, directory: Path, interrupt: Interrupt
) -> tuple[Path, list[str]]:
    """Until the client has written its summary (or its job ended without one); the summary's
    path and what went wrong meanwhile."""
    record = read_record(directory)
    summary_path = Path(record.get("results_dir", directory / "results")) / "summary.json"
    print(f"waiting for the client to finish ({summary_path})", file=sys.stderr)
    reasons: list[str] = []
    while not summary_path.exists() and not interrupt():
        listed = slurm_for(profile).session_jobs(session_id, all_states=True)
        jobs = {job.role: job for job in listed}
        client, service = jobs.get("client"), jobs.get("service")
        if service is not None and not service.active and not reasons:
            reasons.append(
                f"the service job {service.job_id} ended ({service.state}) before the client "
                "finished"
            )
        if client is None or not client.active:
            reasons.append("the client job ended without a summary")
            break
        time.sleep(2)
    return summary_path, reasons


def wait_for_client(
    session_id: str, profile: Path, directory: Path, interrupt: Interrupt, min_success: float
) -> dict[str, Any]:
    """Until the client has written its summary; then stop (which lets Prometheus scrape once
    more after the load and snapshots it) and judge the run: the verdict in session.json."""
    summary_path, reasons = wait_for_summary(session_id, profile, directory, interrupt)
    if interrupt():
        return read_record(directory)
    stop_session(session_id, profile, "finished (--wait)")
    success = success_rate(summary_path)
    if success is not None and success < min_success:
        reasons.append(
            f"{success:.1%} of the requests succeeded, below the recipe's min_success_rate "
            f"{min_success:.0%}"
        )
    update_record(directory, {"verdict": {"ok": not reasons, "reasons": reasons}})
    write_report_or_warn(directory)  # from the snapshot stop has just taken
    return read_record(directory)


def success_rate(summary_path: Path) -> float | None:
    """Succeeded / sent over the whole run (every point of a sweep), or None without a summary."""
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    steps = summary.get("steps") or [summary]
    total = sum((step.get("requests") or {}).get("total") or 0 for step in steps)
    succeeded = sum((step.get("requests") or {}).get("succeeded") or 0 for step in steps)
    return succeeded / total if total else None


def client_still_running(profile: Path, session_id: str) -> bool:
    return any(job.active for job in slurm_for(profile).session_jobs(session_id, role="client"))


def read_record(directory: Path) -> dict[str, Any]:
    return session_record_module().read_record(directory) or {
        "id": directory.name,
        "status": "unknown",
    }


def mark_interrupted(directory: Path, signal_name: str, cancelled: list[str]) -> None:
    record = read_record(directory)
    jobs = {role: {"state": "CANCELLED"} for role in record.get("jobs", {})}
    update_record(
        directory,
        {
            "status": "interrupted",
            "interrupted_by": signal_name,
            "stopped": session_record_module().now_iso(),
            "cancelled_jobs": sorted(set(record.get("cancelled_jobs", [])) | set(cancelled)),
            "jobs": jobs,
        },
    )


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
    report = Path(record.get("session_dir", "")) / "report.html"
    if record.get("session_dir") and report.exists():
        print(f"  report      {report}")
    print(f"  prometheus  {record.get('prometheus', {}).get('url', '')}")
    print(f"  tunnel      {record.get('tunnel_command', '')}")
    print(f"  then open   {record.get('prometheus_url', '')}  ({login_hint(record)})")
    session_id = record.get("id", "ID")
    print(f"  status      python -m hpcansible status {session_id}")
    print(f"  stop        python -m hpcansible stop {session_id}   (snapshots the metrics first)")
