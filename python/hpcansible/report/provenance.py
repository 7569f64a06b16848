"""Where the numbers come from: recipes, versions, jobs, nodes and their hardware, notes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpcansible.errors import UserError
from hpcansible.report.document import Block, Paragraph, Preformatted, Table
from hpcansible.report.session import SessionRef

NODE_FIELDS = (
    ("CPUTot", "CPUs"),
    ("Sockets", "sockets"),
    ("CoresPerSocket", "cores/socket"),
    ("ThreadsPerCore", "threads/core"),
    ("RealMemory", "memory (MB)"),
    ("Gres", "GRES"),
    ("Arch", "arch"),
    ("OS", "OS"),
    ("Version", "slurmd"),
)
ROLES = ("service", "client", "prometheus")


def _text(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value) or "-"
    return str(value)


def session_nodes(record: dict[str, Any]) -> list[str]:
    nodes = []
    for job in record.get("jobs", {}).values():
        for node in job.get("nodes") or [job.get("node")]:
            if node and not str(node).startswith("<") and node not in nodes:
                nodes.append(node)
    return nodes


def scontrol_nodes(record: dict[str, Any], nodes: list[str]) -> dict[str, dict[str, str]]:
    """`scontrol show node` for the session's nodes, through the session's site profile;
    {} where SLURM cannot be asked from here."""
    if not nodes:
        return {}
    try:
        from hpcansible.cluster import command_runner, login_host
        from hpcansible.sessions import collection_module_utils, profile_dir

        profile = profile_dir(record.get("profile") or "testbed")
        run = command_runner(login_host(profile), timeout=10)
        code, out, _ = run(["scontrol", "-o", "show", "node", ",".join(nodes)])
        parse = collection_module_utils("slurm").parse_scontrol_record
    except (UserError, OSError, ImportError):
        return {}
    if code != 0:
        return {}
    found = {}
    for line in out.splitlines():
        fields = parse(line)
        if fields.get("NodeName"):
            found[fields["NodeName"]] = fields
    return found


def jobs_table(record: dict[str, Any]) -> Table:
    rows = []
    jobs = record.get("jobs", {})
    for role in sorted(jobs, key=lambda r: ROLES.index(r) if r in ROLES else len(ROLES)):
        job = jobs[role]
        rows.append(
            [
                role,
                _text(job.get("job_id")),
                _text(job.get("nodes") or job.get("node")),
                _text(job.get("state")),
                _text(job.get("log")),
            ]
        )
    return Table(["role", "job id", "node", "state", "log"], rows, "SLURM jobs")


def hardware_table(
    record: dict[str, Any], nodes: dict[str, dict[str, str]], exporter_facts: dict[str, str]
) -> Table | Paragraph:
    roles_on: dict[str, list[str]] = {}
    for role, job in record.get("jobs", {}).items():
        for node in job.get("nodes") or [job.get("node")]:
            roles_on.setdefault(str(node), []).append(role)
    if not nodes:
        return Paragraph(
            "Hardware: SLURM could not be asked from here (scontrol show node)"
            + (f"; the exporter reports {_facts(exporter_facts)}" if exporter_facts else ""),
            "note",
        )
    rows = [
        [name, ", ".join(roles_on.get(name, [])) or "-", *(_text(f.get(k)) for k, _ in NODE_FIELDS)]
        for name, f in nodes.items()
    ]
    caption = "Nodes (scontrol show node)"
    if exporter_facts:
        caption += f"; the service's exporter reports {_facts(exporter_facts)}"
    return Table(["node", "roles", *(title for _, title in NODE_FIELDS)], rows, caption)


def _facts(facts: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in facts.items())


def versions_table(record: dict[str, Any], summary: dict[str, Any]) -> Table:
    rows = [[name, _text(value)] for name, value in (record.get("versions") or {}).items()]
    if summary.get("tool"):
        rows.append(["client", summary["tool"]])
    for name, value in (record.get("hosts") or {}).items():
        rows.append([f"host: {name}", _text(value)])
    rows.append(["profile", _text(record.get("profile"))])
    return Table(["what", "version / where"], rows, "Versions and hosts")


def recipe_blocks(session: SessionRef) -> list[Block]:
    recipes = session.record.get("recipes") or {}
    blocks: list[Block] = []
    if recipes:
        rows = [[kind, _text(path)] for kind, path in recipes.items()]
        blocks.append(Table(["recipe", "file"], rows, "Recipes as given"))
    for kind in (*ROLES, "role_vars"):
        path = session.directory / "recipes" / f"{kind}.yml"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        blocks.append(Preformatted(f"{kind} recipe as resolved ({path})", text.strip()))
    return blocks


def notes_blocks(record: dict[str, Any]) -> list[Block]:
    notes = record.get("notes") or []
    if isinstance(notes, str):
        notes = [notes]
    if not notes:
        return [Paragraph("Notes: none (every recipe key was used).", "note")]
    return [Table(["note"], [[_text(n)] for n in notes], "Notes from the recipes and the session")]


def job_log_tail(session: SessionRef, role: str, lines: int = 30) -> Preformatted | None:
    """The last lines of a job's log (what the service and the client said about themselves)."""
    log = session.record.get("jobs", {}).get(role, {}).get("log")
    if not log or "JOBID" in log:
        return None
    try:
        text = Path(log).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    tail = "\n".join(text.splitlines()[-lines:])
    return Preformatted(f"{role} job log, last {lines} lines ({log})", tail)
