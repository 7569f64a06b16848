"""`status [ID]` and `list`: what a session does, from SLURM, Prometheus and session.json."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from hpcansible.cluster import slurm_for
from hpcansible.errors import UserError
from hpcansible.prometheus_http import api_json
from hpcansible.sessions import list_sessions, profile_dir, read_session

ROLES = ("service", "client", "prometheus")


def register(subparsers: argparse._SubParsersAction) -> None:
    status = subparsers.add_parser(
        "status",
        help="a session's jobs, endpoint and Prometheus targets (exit 0 when healthy)",
        description="Each job's state, node and time left, the service endpoint, and whether "
        "Prometheus's targets are up. Exit code 0 when every job runs and every target is up.",
    )
    status.add_argument("session_id", nargs="?", metavar="ID", help="default: the newest session")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(func=show_status)
    listing = subparsers.add_parser("list", help="sessions, newest first, with state and age")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.set_defaults(func=show_list)


def newest_session_id() -> str:
    sessions = list_sessions()
    if not sessions:
        raise UserError("no sessions yet: start one with `python -m hpcansible run`")
    return sessions[0]["id"]


def session_profile(record: dict[str, Any]):
    return profile_dir(record.get("profile") or "testbed")


def prometheus_targets(record: dict[str, Any]) -> list[dict[str, Any]] | None:
    if not record.get("prometheus", {}).get("url"):
        return None
    try:
        targets = api_json(record, "/api/v1/targets?state=active")["data"]["activeTargets"]
    except (OSError, ValueError, KeyError):
        return None
    return [
        {
            "job": target["labels"].get("job", ""),
            "url": target.get("scrapeUrl", ""),
            "health": target.get("health", "unknown"),
            "error": target.get("lastError", ""),
        }
        for target in targets
    ]


# Job states that end a session's job for a reason the user must see by name.
FAILED_STATES = ("NODE_FAIL", "TIMEOUT", "PREEMPTED", "OUT_OF_MEMORY", "FAILED", "BOOT_FAIL",
                 "DEADLINE", "CANCELLED", "COMPLETED")  # fmt: skip


def job_status(slurm: Any, role: str, known: dict[str, Any], live: Any) -> dict[str, Any]:
    """One job as SLURM sees it now, beside what the session recorded."""
    job = live
    if job is None and known.get("job_id"):
        # Gone from squeue: scontrol still knows a finished job for a while (MinJobAge).
        job = slurm.show(str(known["job_id"]))
    node = job.nodes[0] if job and job.nodes else ""
    recorded = known.get("node", "")
    return {
        "job_id": job.job_id if job else known.get("job_id"),
        "state": job.state if job else "ENDED",
        "node": node or recorded,
        "recorded_node": recorded,
        "moved": bool(node and recorded and node != recorded and not recorded.startswith("<")),
        "time_left": job.time_left if job else "",
        "reason": job.reason if job else "",
    }


def problems_of(record: dict[str, Any], jobs: dict[str, Any], targets: list | None) -> list[str]:
    """Why the session is not healthy, one line each; empty when it is."""
    found = []
    for role in ROLES:
        job = jobs.get(role)
        if job is None:
            found.append(f"{role}: no job")
        elif job["state"] != "RUNNING":
            found.append(f"{role} job {job['job_id']} is {job['state']}")
        elif job["moved"]:
            found.append(
                f"{role} job {job['job_id']} moved from {job['recorded_node']} to {job['node']}: "
                "the session still points at the old node"
            )
    endpoint_host = urlsplit(record.get("service_endpoint", "")).hostname
    service = jobs.get("service", {})
    if endpoint_host and service.get("state") == "RUNNING" and endpoint_host != service["node"]:
        found.append(
            f"endpoint {record['service_endpoint']} is not the service's node {service['node']}"
        )
    if jobs.get("prometheus", {}).get("state") == "RUNNING":
        if targets is None:
            found.append("Prometheus does not answer")
        else:
            found += [f"target {t['job']} is {t['health']} ({t['url']})" for t in targets
                      if t["health"] != "up"]  # fmt: skip
            exporter_jobs = {
                record.get("service", {}).get(key) for key in ("exporter_job", "gpu_exporter_job")
            } - {None, ""}
            for target in targets or []:
                host = urlsplit(target["url"]).hostname
                if (
                    target["job"] in exporter_jobs
                    and service.get("node")
                    and host != service["node"]
                ):
                    found.append(
                        f"target {target['job']} scrapes {host}, not the service's node "
                        f"{service['node']}"
                    )
    return found


def collect_status(session_id: str) -> dict[str, Any]:
    record = read_session(session_id)
    slurm = slurm_for(session_profile(record))
    live = {job.role: job for job in slurm.session_jobs(session_id, all_states=True)}
    known_jobs = record.get("jobs", {})
    roles = sorted(known_jobs, key=lambda role: ROLES.index(role) if role in ROLES else 9)
    jobs = {role: job_status(slurm, role, known_jobs[role], live.get(role)) for role in roles}
    targets = (
        prometheus_targets(record) if jobs.get("prometheus", {}).get("state") == "RUNNING" else None
    )
    problems = problems_of(record, jobs, targets)
    return {
        "id": session_id,
        "status": record.get("status", "unknown"),
        "healthy": not problems,
        "problems": problems,
        "jobs": jobs,
        "service_endpoint": record.get("service_endpoint", ""),
        "prometheus_url": record.get("prometheus", {}).get("url", ""),
        "tunnel_command": record.get("tunnel_command", ""),
        "targets": targets,
        "results_dir": record.get("results_dir", ""),
    }


def show_status(args: argparse.Namespace) -> int:
    status = collect_status(args.session_id or newest_session_id())
    if args.json:
        print(json.dumps(status, indent=2))
        return 0 if status["healthy"] else 1
    health = "healthy" if status["healthy"] else "NOT healthy"
    print(f"session {status['id']}: {status['status']}, {health}")
    for problem in status["problems"]:
        print(f"  problem     {problem}")
    for role, job in status["jobs"].items():
        detail = f" ({job['reason']})" if job["reason"] else ""
        left = f", {job['time_left']} left" if job["time_left"] else ""
        where = job["node"] or "-"
        print(f"  {role:<11} job {job['job_id']!s:<7} {job['state']:<10} {where}{left}{detail}")
    print(f"  endpoint    {status['service_endpoint'] or '-'}")
    print(f"  prometheus  {status['prometheus_url'] or '-'}")
    if status["targets"] is None:
        print("  targets     unknown (Prometheus not running or not reachable from here)")
    for target in status["targets"] or []:
        error = f" ({target['error']})" if target["error"] else ""
        print(f"  target      {target['job']:<22} {target['health']:<7} {target['url']}{error}")
    if status["tunnel_command"]:
        print(f"  tunnel      {status['tunnel_command']}")
    return 0 if status["healthy"] else 1


def age(created: str) -> str:
    try:
        started = datetime.fromisoformat(created)
    except (TypeError, ValueError):
        return "?"
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - started).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def show_list(args: argparse.Namespace) -> int:
    sessions = list_sessions()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": s.get("id"),
                        "status": s.get("status"),
                        "created": s.get("created"),
                        "service_endpoint": s.get("service_endpoint", ""),
                    }
                    for s in sessions
                ],
                indent=2,
            )
        )
        return 0
    if not sessions:
        print("no sessions", file=sys.stderr)
        return 0
    print(f"{'SESSION':<40} {'STATUS':<12} {'AGE':>5}  ENDPOINT")
    for session in sessions:
        print(
            f"{session.get('id', '?'):<40} {session.get('status', '?'):<12} "
            f"{age(session.get('created', '')):>5}  {session.get('service_endpoint', '')}"
        )
    return 0
