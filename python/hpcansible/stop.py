"""`stop ID|--all`: end a session, found by its tag, after snapshotting its metrics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hpcansible.cluster import slurm_error_class, slurm_for
from hpcansible.errors import UserError
from hpcansible.report.command import write_report_or_warn
from hpcansible.runner import run_playbook
from hpcansible.sessions import list_sessions, profile_dir, read_session, session_dir
from hpcansible.tunnel import close_tunnel

# How long stop waits for a SLURM controller that does not answer (a restart takes seconds).
CONTROLLER_WAIT_S = 20.0
ACTIVE = ("starting", "running", *(f"step {n}" for n in range(1, 7)))


def register(subparsers: argparse._SubParsersAction) -> None:
    stop = subparsers.add_parser(
        "stop",
        help="cancel every job of a session, snapshot its metrics, record it",
        description="Snapshot Prometheus's TSDB, cancel every job carrying the session's tag "
        "(also after the CLI was killed), wait until they are gone, close an open tunnel and "
        "record it in session.json. Running it twice is harmless.",
    )
    stop.add_argument("session_id", nargs="?", metavar="ID")
    stop.add_argument("--all", action="store_true", help="every session that still has jobs")
    stop.add_argument("--profile", help="site profile (default: the session's own)")
    stop.set_defaults(func=stop_command)


def stop_session(session_id: str, profile: Path, reason: str = "stopped by the user") -> bool:
    try:
        record = read_session(session_id)
    except UserError:
        record = {}
    close_tunnel(record)
    wait_for_slurm(session_id, profile, record)
    result = run_playbook(
        "teardown.yml",
        {
            "hpcansible_session_id": session_id,
            "hpcansible_stop_reason": reason,
            "hpcansible_local_session_dir": str(session_dir(session_id)),
        },
        inventory=[profile],
        private_data_dir=session_dir(session_id) / ".runner",
        log_path=session_dir(session_id) / "logs" / "ansible.log",
    )
    if not result.ok:
        reason = (result.failures[-1] if result.failures else result.status).strip()
        if reason.startswith("stopped, but"):  # the jobs are gone; the snapshot is not there
            raise UserError(f"{session_id}: {reason}")
        raise UserError(f"stopping {session_id} failed: {reason}")
    return True


def wait_for_slurm(session_id: str, profile: Path, record: dict) -> None:
    """stop needs SLURM to cancel: wait a little for a controller that restarts, then say
    what may still run."""
    slurm = slurm_for(profile)
    try:
        slurm.wait_for_controller(CONTROLLER_WAIT_S)
    except slurm_error_class() as error:
        jobs = ", ".join(
            f"{role} job {job['job_id']}"
            for role, job in record.get("jobs", {}).items()
            if job.get("job_id")
        )
        left = f"; these may still run: {jobs}" if jobs else ""
        raise UserError(
            f"cannot stop {session_id}: {error} after {CONTROLLER_WAIT_S:g} s{left}; "
            f"run `python -m hpcansible stop {session_id}` again once SLURM answers"
        ) from None


def sessions_with_jobs(profile: Path) -> list[str]:
    tagged = {job.session for job in slurm_for(profile).queue() if job.session and job.active}
    recorded = {s["id"] for s in list_sessions() if s.get("status") in ACTIVE}
    return sorted(tagged | recorded)


def stop_command(args: argparse.Namespace) -> int:
    if args.all == bool(args.session_id):
        raise UserError("give a session ID or --all")
    if args.all:
        profile = profile_dir(args.profile or "testbed")
        targets = sessions_with_jobs(profile)
    else:
        targets = [args.session_id]
    for session_id in targets:
        if args.profile:
            profile = profile_dir(args.profile)
        else:
            try:
                profile = profile_dir(read_session(session_id).get("profile") or "testbed")
            except UserError:
                profile = profile_dir("testbed")
        stop_session(session_id, profile)
        print(f"stopped {session_id}")
        snapshot_error = read_session(session_id).get("prometheus", {}).get("snapshot_error")
        if snapshot_error:
            print(
                f"hpcansible: note: no TSDB snapshot of {session_id}: {snapshot_error}",
                file=sys.stderr,
            )
        # the report, from the snapshot just taken (a warning line when it cannot be written)
        write_report_or_warn(session_dir(session_id))
    if not targets:
        print("no session has jobs", file=sys.stderr)
    return 0
