# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Talking to SLURM through its command line, shared by the slurm_job module and the
slurm_jobs inventory plugin.

Commands are always argument lists; how they run (locally, through AnsibleModule.run_command,
or on a login node over SSH) is the caller's `CommandRunner`. Nothing here imports Ansible, so
the parsers are unit-tested on captured output.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

# (argv, stdin) -> (rc, stdout, stderr)
CommandRunner = Callable[[Sequence[str], "str | None"], "tuple[int, str, str]"]

TAG_PREFIX = "hpcansible:"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

ACTIVE_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "REQUEUED",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
    }
)
FAILED_STATES = frozenset(
    {
        "FAILED",
        "TIMEOUT",
        "NODE_FAIL",
        "CANCELLED",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "BOOT_FAIL",
        "DEADLINE",
        "REVOKED",
        "SPECIAL_EXIT",
    }
)
FINISHED_STATES = FAILED_STATES | {"COMPLETED"}

# How the waits poll (issue 9): at their first interval while the wait is young, since on a
# free cluster a job starts and a service answers within a second or two and every interval
# of back-off is time the session loses; then slower, so that a job that queues for an hour
# does not hammer slurmctld.
FAST_POLL_S = 10.0


def next_interval(interval: float, elapsed: float, max_interval: float) -> float:
    """The pause before the next poll of a wait that began `elapsed` seconds ago."""
    return interval if elapsed < FAST_POLL_S else min(interval * 1.5, max_interval)


def poll_retries(timeout_s: float, interval_s: float) -> int:
    """How many retries a fixed-interval wait (Ansible's until/retries/delay) needs to last
    `timeout_s`: the roles' readiness polls and teardown's wait for the last scrape."""
    return math.ceil(float(timeout_s) / float(interval_s))


# squeue's output, one job per line; the comment goes last because it may contain the separator.
SQUEUE_FIELDS = (
    ("job_id", "%i"),
    ("name", "%j"),
    ("state", "%T"),
    ("reason", "%r"),
    ("nodelist", "%N"),
    ("partition", "%P"),
    ("time_left", "%L"),
    ("user", "%u"),
    ("comment", "%k"),
)
SQUEUE_SEPARATOR = "|"
SQUEUE_FORMAT = SQUEUE_SEPARATOR.join(code for _, code in SQUEUE_FIELDS)


def subprocess_runner(ssh_prefix: Sequence[str] = (), timeout: float = 30) -> CommandRunner:
    """Run SLURM's commands here, or through `ssh_prefix` (ssh ... host --) on a login host."""

    def run(argv: Sequence[str], stdin: str | None = None) -> tuple[int, str, str]:
        # Over SSH the remote shell parses the command line: quote every argument.
        command = [*ssh_prefix, shlex.join(argv)] if ssh_prefix else list(argv)
        try:
            done = subprocess.run(
                command,
                # Never the caller's stdin: ssh would read (and swallow) a terminal's input.
                input=stdin if stdin is not None else "",
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as error:
            return 127, "", f"{command[0]}: not found ({error.strerror})"
        except subprocess.TimeoutExpired:
            return 124, "", f"{command[0]}: no answer within {timeout:g} s"
        return done.returncode, done.stdout, done.stderr

    return run


class SlurmError(Exception):
    """A SLURM command failed; the message is SLURM's own error line."""


class JobFailed(SlurmError):
    def __init__(self, message: str, job: JobInfo) -> None:
        super().__init__(message)
        self.job = job


class JobWaitTimeout(SlurmError):
    def __init__(self, message: str, job: JobInfo) -> None:
        super().__init__(message)
        self.job = job


@dataclass
class JobInfo:
    job_id: str
    name: str = ""
    state: str = "UNKNOWN"
    reason: str = ""
    nodelist: str = ""
    nodes: list[str] = field(default_factory=list)
    partition: str = ""
    time_left: str = ""
    user: str = ""
    comment: str = ""
    exit_code: str = ""
    stdout_path: str = ""
    stderr_path: str = ""
    tag: dict[str, str] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def session(self) -> str:
        return self.tag.get("session", "")

    @property
    def role(self) -> str:
        return self.tag.get("role", "")

    @property
    def ports(self) -> list[int]:
        return [int(port) for port in self.tag.get("ports", "").split(",") if port.isdigit()]

    def as_dict(self) -> dict:
        data = asdict(self)
        del data["tag"]
        data.update(session=self.session, role=self.role, ports=self.ports)
        return data


def job_id_key(job_id: str) -> tuple[int, ...]:
    """Sort key for job ids, array and heterogeneous ones too: '12', '12_3', '12+1'."""
    return tuple(int(part) for part in re.findall(r"\d+", str(job_id))) or (0,)


# --- host lists --------------------------------------------------------------------------------


def inventory_session_jobs(
    hostvars: Mapping[str, Any], session: str, role: str | None = None
) -> list[dict]:
    """The jobs of one session (and role) that the slurm_jobs inventory plugin put into its
    hosts' `slurm_jobs` variables: once each, oldest first (the session_jobs filter and the
    filters session_jobs and running_session_job both use this)."""
    jobs: dict[str, dict] = {}
    for host in hostvars:
        for job in hostvars[host].get("slurm_jobs", []) or []:
            if job.get("session") == session and (role is None or job.get("role") == role):
                jobs[str(job["job_id"])] = job
    return [jobs[job_id] for job_id in sorted(jobs, key=job_id_key)]


class NoRunningJob(ValueError):
    """The inventory holds the session's jobs, but no running one of the role asked for."""


def inventory_running_job(
    hostvars: Mapping[str, Any], session: str, role: str, required: bool = True
) -> dict[str, Any]:
    """Where the slurm_jobs inventory says a role's job runs: {node, nodes, ports, state}.

    Outside a session whose inventory has the plugin (a role used alone) nothing is found: {}.
    Inside one, a required role without a running job raises NoRunningJob.
    """
    running = [
        job for job in inventory_session_jobs(hostvars, session, role)
        if job.get("state") == "RUNNING"
    ]  # fmt: skip
    if not running:
        knows_jobs = any("slurm_session" in hostvars[host] for host in hostvars)
        if knows_jobs and required:
            raise NoRunningJob(
                f"the slurm_jobs inventory shows no running {role} job of session {session}"
            )
        return {}
    job = running[0]
    nodes = [str(node) for node in job.get("nodes") or []]
    return {"node": nodes[0] if nodes else "", "nodes": nodes,
            "ports": list(job.get("ports") or []), "state": "RUNNING"}  # fmt: skip


def _split_top_level(text: str, separator: str = ",") -> list[str]:
    """Split at separators that are not inside brackets: 'a[1,2],b' -> ['a[1,2]', 'b']."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == separator and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _expand_range(spec: str) -> list[str]:
    values: list[str] = []
    for item in spec.split(","):
        low, dash, high = item.partition("-")
        if not dash:
            values.append(low)
            continue
        if not (low.isdigit() and high.isdigit()) or int(high) < int(low):
            raise ValueError(f"bad host range {item!r}")
        width = len(low) if low.startswith("0") else 0
        values.extend(str(number).zfill(width) for number in range(int(low), int(high) + 1))
    return values


def expand_hostlist(expression: str) -> list[str]:
    """Expand a SLURM host list: 'node[1-3,5],gpu01' -> node1 node2 node3 node5 gpu01.

    Zero padding is kept ('n[01-03]'), several bracket groups give their product
    ('r[1-2]n[1-2]'), and SLURM's placeholders for "no nodes" give an empty list.
    """
    expression = (expression or "").strip()
    if expression in ("", "(null)", "None", "None assigned", "n/a"):
        return []
    hosts: list[str] = []
    for part in _split_top_level(expression):
        names = [""]
        for literal, ranges in re.findall(r"([^\[]*)(?:\[([^\]]*)\])?", part):
            expansions = _expand_range(ranges) if ranges else [""]
            names = [name + literal + value for name in names for value in expansions]
        hosts.extend(names)
    return hosts


# --- session tags -----------------------------------------------------------------------------


def build_tag(session: str, role: str, ports: Iterable[int] = ()) -> str:
    """The job comment that marks a job as part of a session: no spaces, no shell metacharacters."""
    for label, value in (("session", session), ("role", role)):
        if not SAFE_NAME.match(value or ""):
            raise ValueError(
                f"{label} {value!r} must be 1-64 letters, digits, '.', '_' or '-', starting with "
                "a letter or digit"
            )
    tag = f"{TAG_PREFIX}session={session};role={role}"
    port_list = [str(int(port)) for port in ports]
    if port_list:
        tag += ";ports=" + ",".join(port_list)
    return tag


def parse_tag(comment: str) -> dict[str, str]:
    """Read the session tag back from a job comment; {} when the job is not ours."""
    comment = (comment or "").strip()
    if not comment.startswith(TAG_PREFIX):
        return {}
    tag_text = comment[len(TAG_PREFIX) :].split(" ", 1)[0]
    tag: dict[str, str] = {}
    for item in tag_text.split(";"):
        key, equals, value = item.partition("=")
        if equals:
            tag[key] = value
    return tag


# --- parsers ----------------------------------------------------------------------------------


def parse_squeue(output: str) -> list[JobInfo]:
    """Parse `squeue -h -o SQUEUE_FORMAT` output."""
    jobs = []
    for line in output.splitlines():
        if not line.strip():
            continue
        values = line.split(SQUEUE_SEPARATOR, len(SQUEUE_FIELDS) - 1)
        if len(values) != len(SQUEUE_FIELDS):
            raise SlurmError(f"unexpected squeue line: {line!r}")
        record = dict(zip((name for name, _ in SQUEUE_FIELDS), values, strict=True))
        record["comment"] = record["comment"] if record["comment"] != "(null)" else ""
        record["reason"] = record["reason"] if record["reason"] != "None" else ""
        jobs.append(
            JobInfo(
                **record,
                nodes=expand_hostlist(record["nodelist"]),
                tag=parse_tag(record["comment"]),
            )
        )
    return jobs


def parse_scontrol_record(line: str) -> dict[str, str]:
    """Parse one `scontrol show job -o` line of Key=Value pairs.

    Values may contain spaces (Command=, Comment=); a token that does not start with a key
    continues the previous value.
    """
    record: dict[str, str] = {}
    key = None
    for token in line.split():
        match = re.match(r"^([A-Za-z][A-Za-z0-9_/:]*)=(.*)$", token)
        if match:
            key, value = match.groups()
            record[key] = value
        elif key is not None:
            record[key] += " " + token
    return record


def job_from_scontrol(record: dict[str, str]) -> JobInfo:
    reason = record.get("Reason", "")
    comment = record.get("Comment", "")
    comment = "" if comment == "(null)" else comment
    nodelist = record.get("NodeList", "")
    return JobInfo(
        job_id=record.get("JobId", ""),
        name=record.get("JobName", ""),
        state=record.get("JobState", "UNKNOWN"),
        reason="" if reason == "None" else reason,
        nodelist="" if nodelist == "(null)" else nodelist,
        nodes=expand_hostlist(nodelist),
        partition=record.get("Partition", ""),
        time_left="",
        user=record.get("UserId", "").split("(")[0],
        comment=comment,
        exit_code=record.get("ExitCode", ""),
        stdout_path=record.get("StdOut", ""),
        stderr_path=record.get("StdErr", ""),
        tag=parse_tag(comment),
    )


def parse_sbatch_output(stdout: str) -> str:
    """`sbatch --parsable` prints 'jobid' or 'jobid;cluster'."""
    first = stdout.strip().splitlines()[0] if stdout.strip() else ""
    job_id = first.split(";")[0].strip()
    if not job_id.isdigit():
        raise SlurmError(f"sbatch printed no job id: {stdout.strip()!r}")
    return job_id


def slurm_error_line(stderr: str, stdout: str = "") -> str:
    """SLURM's own error, without the 'sbatch: error:' noise: the line a user needs to see."""
    lines = [line.strip() for line in (stderr or stdout).splitlines() if line.strip()]
    # 'Try "sbatch --help" for more information' says nothing about what went wrong.
    lines = [line for line in lines if not line.startswith("Try ")] or lines
    if not lines:
        return "no output"
    errors = [
        re.sub(r"^\w+: (error|fatal): ", "", line) for line in lines if "error" in line.lower()
    ]
    if not errors:
        return lines[-1]
    failed = [line for line in errors if line.startswith("Batch job submission failed: ")]
    if failed:
        return failed[-1].replace("Batch job submission failed: ", "")
    # One message may span several lines ("This does not look like a batch script. The first
    # / line must start with #! ..."): keep all of it, not only its last line.
    return " ".join(errors)


def tail(path: str, lines: int = 20) -> str:
    """The last lines of a job's output file (read on the shared filesystem), or ''."""
    if not path or not os.path.isfile(path):
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 64 * 1024))
        text = handle.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


# --- the CLI ----------------------------------------------------------------------------------


# The one table of the sbatch options a job takes, by name, with their Ansible argument type.
# SbatchOptions, the slurm_job module's argument spec and `resources` option, and the recipe
# schema's `resources` (recipe_resources.py, which checks each value) all follow it.
SBATCH_OPTIONS: dict[str, str] = {
    "partition": "str",
    "account": "str",
    "qos": "str",
    "time": "str",
    "nodes": "str",
    "ntasks": "int",
    "cpus_per_task": "int",
    "mem": "str",
    "gres": "str",
    "gpus": "str",  # --gpus=[type:]count (issue 11)
    "constraint": "str",
    "nodelist": "str",
    "exclude": "str",
    # --requeue / --no-requeue; session jobs never requeue, so that a node failure ends them
    # visibly instead of restarting them elsewhere behind the session's back.
    "requeue": "bool",
    "extra_args": "list",
}
# What the module sets for a job itself (its name, tag, logs and folder).
SESSION_SBATCH_FIELDS = ("job_name", "comment", "output", "error", "chdir")


@dataclass
class SbatchOptions:
    """sbatch options; each maps to one long option, so no value is ever parsed by a shell."""

    job_name: str | None = None
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str | None = None
    nodes: str | None = None
    ntasks: int | None = None
    cpus_per_task: int | None = None
    mem: str | None = None
    gres: str | None = None
    gpus: str | None = None
    constraint: str | None = None
    nodelist: str | None = None
    exclude: str | None = None
    requeue: bool | None = None
    comment: str | None = None
    output: str | None = None
    error: str | None = None
    chdir: str | None = None
    extra_args: list[str] = field(default_factory=list)

    def argv(self) -> list[str]:
        args = ["sbatch", "--parsable"]
        for name in (SESSION_SBATCH_FIELDS[0], *SBATCH_OPTIONS, *SESSION_SBATCH_FIELDS[1:]):
            value = getattr(self, name)
            if name == "extra_args" or value in (None, ""):
                continue
            if name == "requeue":
                args.append("--requeue" if value else "--no-requeue")
            else:
                args.append(f"--{name.replace('_', '-')}={value}")
        args.extend(self.extra_args)
        return args


class Slurm:
    """SLURM's CLI through a CommandRunner (local, AnsibleModule.run_command, or SSH)."""

    def __init__(
        self,
        run: CommandRunner,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.run = run
        self.clock = clock
        self.sleep = sleep

    def _check(self, argv: Sequence[str], stdin: str | None = None) -> str:
        rc, out, err = self.run(list(argv), stdin)
        if rc != 0:
            raise SlurmError(f"{argv[0]}: {slurm_error_line(err, out)}")
        return out

    def ping(self) -> None:
        """Raise SlurmError unless the controller answers (`scontrol ping`)."""
        rc, out, err = self.run(["scontrol", "ping"], None)
        if rc != 0 or " is UP" not in out:
            detail = slurm_error_line(err, out) or "no answer"
            raise SlurmError(f"the SLURM controller does not answer (scontrol ping: {detail})")

    def wait_for_controller(self, timeout: float, interval: float = 2.0) -> None:
        """ping until it answers or `timeout` has passed (then the last SlurmError)."""
        deadline = self.clock() + timeout
        while True:
            try:
                return self.ping()
            except SlurmError:
                if self.clock() + interval > deadline:
                    raise
            self.sleep(interval)

    def submit(self, options: SbatchOptions, script: str) -> str:
        """Submit a script given as text on stdin; return the job id."""
        return parse_sbatch_output(self._check(options.argv(), script))

    def queue(
        self,
        *,
        name: str | None = None,
        user: str | None = None,
        job_ids: Sequence[str] = (),
        all_states: bool = False,
    ) -> list[JobInfo]:
        argv = ["squeue", "-h", "-o", SQUEUE_FORMAT]
        if all_states:
            argv.append("--states=all")
        if name:
            argv.append(f"--name={name}")
        if user:
            argv.append(f"--user={user}")
        if job_ids:
            argv.append("--jobs=" + ",".join(job_ids))
        rc, out, err = self.run(argv, None)
        if rc != 0:
            # squeue --jobs=<finished id> fails instead of printing nothing.
            if job_ids and "Invalid job id" in err:
                return []
            raise SlurmError(f"squeue: {slurm_error_line(err, out)}")
        return parse_squeue(out)

    def session_jobs(
        self, session: str, role: str | None = None, all_states: bool = False
    ) -> list[JobInfo]:
        return [
            job
            for job in self.queue(all_states=all_states)
            if job.session == session and (role is None or job.role == role)
        ]

    def show(self, job_id: str) -> JobInfo | None:
        rc, out, err = self.run(["scontrol", "show", "job", "-o", job_id], None)
        if rc != 0:
            if "Invalid job id" in err:
                return None
            raise SlurmError(f"scontrol: {slurm_error_line(err, out)}")
        line = next((line for line in out.splitlines() if line.startswith("JobId=")), "")
        return job_from_scontrol(parse_scontrol_record(line)) if line else None

    def cancel(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            self._check(["scancel", *job_ids])

    def wait_gone(self, job_ids: Sequence[str], timeout: float, interval: float = 0.2) -> bool:
        """Wait until none of the jobs is active any more."""
        started = self.clock()
        deadline = started + timeout
        while True:
            if not any(job.active for job in self.queue(job_ids=job_ids)):
                return True
            if self.clock() >= deadline:
                return False
            self.sleep(interval)
            interval = next_interval(interval, self.clock() - started, 2.0)

    def wait(
        self,
        job_id: str,
        until: str,
        timeout: float,
        interval: float = 0.2,
        max_interval: float = 2.0,
        tail_lines: int = 20,
    ) -> JobInfo:
        """Poll until the job runs (`until='running'`) or ends (`'completed'`).

        The interval stays small while the wait is young, so that a job that starts at once is
        seen at once, and backs off so that a long wait does not hammer slurmctld
        (next_interval).
        """
        started = self.clock()
        deadline = started + timeout
        job = JobInfo(job_id=job_id)
        while True:
            job = self.show(job_id) or JobInfo(
                job_id=job_id, state="UNKNOWN", reason="job vanished"
            )
            if job.state in FAILED_STATES:
                raise JobFailed(describe_failure(job, tail(job.stdout_path, tail_lines)), job)
            if job.state == "COMPLETED" or (until == "running" and job.state == "RUNNING"):
                return job
            if self.clock() >= deadline:
                why = f": reason {job.reason}" if job.reason else ""
                raise JobWaitTimeout(
                    f"job {job_id} ({job.name}) still {job.state} after {timeout:g} s{why}", job
                )
            self.sleep(min(interval, max(0.0, deadline - self.clock())))
            interval = next_interval(interval, self.clock() - started, max_interval)

    def wait_healthy(
        self,
        job_id: str,
        probe: Callable[[], str | None],
        timeout: float,
        interval: float = 0.2,
        max_interval: float = 1.0,
        tail_lines: int = 20,
    ) -> JobInfo:
        """Poll `probe` (None means healthy, else why not) while the job keeps running.

        A job that ends before it answers fails at once with its output tail, instead of
        leaving the caller to wait out the whole timeout.
        """
        started = self.clock()
        deadline = started + timeout
        while True:
            job = self.show(job_id) or JobInfo(
                job_id=job_id, state="UNKNOWN", reason="job vanished"
            )
            if job.state != "RUNNING":
                output_tail = tail(job.stdout_path, tail_lines)
                if job.state in FAILED_STATES:
                    raise JobFailed(describe_failure(job, output_tail), job)
                raise JobFailed(
                    describe_failure(job, output_tail).replace(
                        f") {job.state}", f") {job.state} before it answered", 1
                    ),
                    job,
                )
            problem = probe()
            if problem is None:
                return job
            if self.clock() >= deadline:
                output_tail = tail(job.stdout_path, tail_lines)
                message = f"job {job_id} ({job.name}) runs but did not answer within {timeout:g} s: {problem}"
                if output_tail:
                    message += f"; last lines of {job.stdout_path}:\n{output_tail}"
                raise JobWaitTimeout(message, job)
            self.sleep(min(interval, max(0.0, deadline - self.clock())))
            interval = next_interval(interval, self.clock() - started, max_interval)


def describe_failure(job: JobInfo, output_tail: str) -> str:
    why = f", reason {job.reason}" if job.reason else ""
    message = f"job {job.job_id} ({job.name}) {job.state}{why}, exit code {job.exit_code or '?'}"
    if output_tail:
        message += f"; last lines of {job.stdout_path}:\n{output_tail}"
    else:
        message += f"; no output in {job.stdout_path or 'its output file'}"
    return message
