#!/usr/bin/python
# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)

DOCUMENTATION = r"""
---
module: slurm_job
short_description: Submit, wait for, inspect and cancel SLURM batch jobs
description:
  - Submits a batch script with C(sbatch --parsable) and an argument list (never a shell string),
    optionally waits until the job runs or ends, and reports its node list, state and reason.
  - Idempotent. A job of the same name and session tag that is still pending or running is
    reported with C(changed=false) instead of being submitted again.
  - Fails on a terminal failure (FAILED, TIMEOUT, NODE_FAIL, CANCELLED, OUT_OF_MEMORY,
    PREEMPTED, ...) with the state, the reason and the last lines of the job's output.
  - Jobs of an hpcansible session carry a tag in their comment
    (C(hpcansible:session=<id>;role=<role>;ports=<p,...>)), which the
    P(hpcansible.hpc.slurm_jobs#inventory) inventory plugin reads.
version_added: 0.1.0
author: hpcansible contributors
options:
  state:
    description:
      - V(present) submits the job unless an active job of the same name and session exists.
      - V(absent) cancels jobs by O(job_id), by O(name), or every job of O(session) (optionally
        only those of O(role)).
      - V(info) only reads, by O(job_id), O(name) or O(session).
    type: str
    choices: [present, absent, info]
    default: present
  name:
    description:
      - Job name (C(--job-name)). Defaults to C(hpcansible-<session>-<role>) when O(session) is set.
    type: str
  session:
    description: Session tag carried in the job's comment.
    type: str
  role:
    description: Role of the job in its session (service, client, prometheus, ...).
    type: str
    default: job
  ports:
    description: Ports the job serves, recorded in the tag for the inventory plugin.
    type: list
    elements: int
    default: []
  script:
    description: Batch script content. Mutually exclusive with O(script_path).
    type: str
  script_path:
    description: Path of a batch script on the host where SLURM's commands run.
    type: path
  chdir:
    description: Working directory of the job (C(--chdir)).
    type: path
  partition:
    description: C(--partition).
    type: str
  account:
    description: C(--account).
    type: str
  qos:
    description: C(--qos).
    type: str
  time:
    description: Time limit (C(--time)), for example C(01:00:00).
    type: str
  nodes:
    description: C(--nodes), a count or a range such as C(1-2).
    type: str
  ntasks:
    description: C(--ntasks).
    type: int
  cpus_per_task:
    description: C(--cpus-per-task).
    type: int
  mem:
    description: C(--mem), for example C(4G).
    type: str
  gres:
    description: C(--gres), for example C(gpu:1).
    type: str
  gpus:
    description: C(--gpus), GPUs for the whole job as C([type:]count), for example C(1) or C(h200:2).
    type: str
  constraint:
    description: C(--constraint).
    type: str
  nodelist:
    description: C(--nodelist).
    type: str
  exclude:
    description: C(--exclude).
    type: str
  requeue:
    description:
      - V(true) for C(--requeue), V(false) for C(--no-requeue); unset leaves the site's default.
      - A job that is not requeued ends as C(NODE_FAIL) when its node fails, instead of
        restarting on another node unseen.
    type: bool
  resources:
    description:
      - The sbatch options above as one mapping (C(partition), C(time), C(gres), C(requeue),
        C(extra_args), ...), as recipes and roles give them. An option also set on its own wins.
    type: dict
    default: {}
  comment:
    description: Extra comment text, appended after the session tag.
    type: str
  output:
    description: C(--output) path (SLURM patterns such as C(%j) allowed).
    type: str
  error:
    description: C(--error) path.
    type: str
  extra_args:
    description: Further sbatch arguments, each one list element (for example C(--exclusive)).
    type: list
    elements: str
    default: []
  job_id:
    description: Job id for O(state=absent) or O(state=info).
    type: str
  wait_for:
    description:
      - After submitting (or finding) the job, wait until it V(running) or V(completed).
      - V(healthy) waits until it runs and then until O(health_url) answers, failing at once
        (with the output tail) when the job ends first.
      - Also applies to O(state=info) when it selects exactly one job (for example by O(job_id)).
    type: str
    choices: [none, running, healthy, completed]
    default: none
  health_url:
    description:
      - URL polled for O(wait_for=healthy); healthy means one of O(health_status).
      - C({node}) in it is replaced by the job's (first) node, known only once it runs.
    type: str
  health_status:
    description: HTTP status codes that count as healthy.
    type: list
    elements: int
    default: [200]
  health_headers:
    description:
      - HTTP headers sent with each poll of O(health_url), for example an C(Authorization)
        header for a Prometheus behind basic auth. Not logged.
    type: dict
    default: {}
  timeout:
    description: Seconds to wait for O(wait_for), and for cancelled jobs to be gone.
    type: float
    default: 60
  poll_interval:
    description: First poll interval in seconds; it backs off by 1.5x up to 2 seconds.
    type: float
    default: 0.2
  tail_lines:
    description: Lines of the job's output shown when it fails.
    type: int
    default: 20
attributes:
  check_mode:
    support: full
    details: Reports what would be submitted or cancelled; never submits, cancels or waits.
  diff_mode:
    support: full
    details: The diff of a submission is the rendered batch script.
notes:
  - Runs SLURM's commands on the host the task runs on, usually the cluster's login node (or
    C(localhost) on the testbed).
  - The job's output file is read on that host to show its tail, so it must be on a filesystem
    that host sees (as on any cluster's shared home or scratch).
requirements:
  - SLURM client commands (sbatch, squeue, scontrol, scancel) on the target host.
seealso:
  - plugin: hpcansible.hpc.slurm_jobs
    plugin_type: inventory
"""

EXAMPLES = r"""
- name: Start the service job and wait until it runs
  hpcansible.hpc.slurm_job:
    session: "{{ session_id }}"
    role: service
    ports: [11434, 8080]
    script: "{{ lookup('ansible.builtin.template', 'service.sbatch.j2') }}"
    partition: gpu
    account: p200000
    qos: default
    time: "02:00:00"
    cpus_per_task: 8
    gres: gpu:1
    output: "{{ session_dir }}/service-%j.out"
    wait_for: running
    timeout: 60
  register: service_job

- name: Show where it runs
  ansible.builtin.debug:
    msg: "{{ service_job.nodes[0] }} (job {{ service_job.job_id }})"

- name: Run a job to completion; fail with its output tail when it fails
  hpcansible.hpc.slurm_job:
    name: smoke
    script: |
      #!/bin/bash
      hostname
    wait_for: completed

- name: Start a web server and wait until it answers on whatever node it got
  hpcansible.hpc.slurm_job:
    session: "{{ session_id }}"
    role: web
    script: |
      #!/bin/bash
      exec python3 -m http.server 8000
    wait_for: healthy
    health_url: "http://{node}:8000/"
    timeout: 120

- name: Read a job
  hpcansible.hpc.slurm_job:
    state: info
    job_id: "{{ service_job.job_id }}"

- name: Cancel every job of the session
  hpcansible.hpc.slurm_job:
    state: absent
    session: "{{ session_id }}"
"""

RETURN = r"""
job_id:
  description: Id of the submitted or found job.
  returned: when a job was submitted, found or read
  type: str
  sample: "4711"
state:
  description: SLURM job state.
  returned: when a job was submitted, found or read
  type: str
  sample: RUNNING
reason:
  description: SLURM's reason for the state (why a job pends), empty when none.
  returned: when a job was submitted, found or read
  type: str
  sample: Resources
nodes:
  description: The job's nodes, host list expanded (C(node[1-3]) gives three names).
  returned: when a job was submitted, found or read
  type: list
  elements: str
  sample: [node1]
nodelist:
  description: The job's node list as SLURM prints it.
  returned: when a job was submitted, found or read
  type: str
  sample: node[1-3]
exit_code:
  description: SLURM's C(exit:signal) code, once known.
  returned: when a job was submitted, found or read
  type: str
  sample: "0:0"
stdout_path:
  description: The job's output file.
  returned: when a job was submitted, found or read
  type: str
  sample: /home/user/hpcansible/sessions/abc/service-4711.out
stderr_path:
  description: The job's error file.
  returned: when a job was submitted, found or read
  type: str
  sample: /home/user/hpcansible/sessions/abc/service-4711.out
job:
  description: Everything known of the job, including its session tag (C(session), C(role), C(ports)).
  returned: when a job was submitted, found or read
  type: dict
jobs:
  description: The jobs read (O(state=info)) or cancelled (O(state=absent)).
  returned: when O(state=info) or O(state=absent)
  type: list
  elements: dict
cancelled:
  description: Ids of the cancelled jobs.
  returned: when O(state=absent)
  type: list
  elements: str
  sample: ["4711", "4712"]
script:
  description: The batch script submitted (or that would be).
  returned: when O(state=present)
  type: str
sbatch_argv:
  description: The sbatch command, as an argument list.
  returned: when O(state=present)
  type: list
  elements: str
"""

import time
import urllib.error
import urllib.request

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hpcansible.hpc.plugins.module_utils.slurm import (
    SBATCH_OPTIONS,
    JobFailed,
    JobInfo,
    JobWaitTimeout,
    SbatchOptions,
    Slurm,
    SlurmError,
    build_tag,
)

# What a job's sbatch options come from: the one table, plus the module's own output paths.
SBATCH_PARAMS = (*SBATCH_OPTIONS, "output", "error", "chdir")


def job_result(job: JobInfo) -> dict:
    return {
        "job_id": job.job_id,
        "state": job.state,
        "reason": job.reason,
        "nodes": job.nodes,
        "nodelist": job.nodelist,
        "exit_code": job.exit_code,
        "stdout_path": job.stdout_path,
        "stderr_path": job.stderr_path,
        "job": job.as_dict(),
    }


def job_name(params: dict) -> str | None:
    if params["name"]:
        return params["name"]
    if params["session"]:
        return f"hpcansible-{params['session']}-{params['role']}"
    return None


def read_script(module: AnsibleModule) -> str:
    params = module.params
    if params["script"] is not None:
        return params["script"]
    try:
        with open(params["script_path"], encoding="utf-8") as handle:
            return handle.read()
    except OSError as error:
        module.fail_json(msg=f"cannot read script_path {params['script_path']}: {error.strerror}")
    return ""


def select_jobs(slurm: Slurm, params: dict) -> list[JobInfo]:
    """The jobs a task means: by id, else by name (within the session, if given), else by session."""
    if params["job_id"]:
        job = slurm.show(params["job_id"])
        return [job] if job else []
    name = job_name(params) if params["name"] or not params["session"] else None
    jobs = slurm.queue(name=name) if name else slurm.queue()
    if params["session"]:
        jobs = [job for job in jobs if job.session == params["session"]]
        if params["role"] != "job" and not params["name"]:
            jobs = [job for job in jobs if job.role == params["role"]]
    return jobs


def http_probe(url: str, statuses: list[int], headers: dict | None = None):
    """A probe for Slurm.wait_healthy: None when the URL answers with one of the statuses."""
    request = urllib.request.Request(
        url, headers={str(k): str(v) for k, v in (headers or {}).items()}
    )

    def probe() -> str | None:
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        except (OSError, ValueError) as error:
            return f"{url}: {getattr(error, 'reason', error)}"
        return None if status in statuses else f"{url}: HTTP {status}"

    return probe


def wait(module: AnsibleModule, slurm: Slurm, job: JobInfo, result: dict) -> JobInfo:
    params = module.params
    try:
        if params["wait_for"] == "healthy":
            started = time.monotonic()
            job = slurm.wait(
                job.job_id,
                "running",
                timeout=params["timeout"],
                interval=params["poll_interval"],
                tail_lines=params["tail_lines"],
            )
            return slurm.wait_healthy(
                job.job_id,
                http_probe(
                    params["health_url"].replace("{node}", job.nodes[0] if job.nodes else ""),
                    params["health_status"],
                    params["health_headers"],
                ),
                timeout=max(1.0, params["timeout"] - (time.monotonic() - started)),
                tail_lines=params["tail_lines"],
            )
        return slurm.wait(
            job.job_id,
            params["wait_for"],
            timeout=params["timeout"],
            interval=params["poll_interval"],
            tail_lines=params["tail_lines"],
        )
    except (JobFailed, JobWaitTimeout) as error:
        result.update(job_result(error.job))
        module.fail_json(msg=str(error), **result)
    except SlurmError as error:
        module.fail_json(msg=str(error), **result)
    return job


def sbatch_values(params: dict) -> dict:
    """The job's sbatch options: `resources` (as recipes and roles give them), then the options
    set one by one, which win."""
    values = {key: params[key] for key in SBATCH_PARAMS}
    for key, value in (params.get("resources") or {}).items():
        if key not in SBATCH_OPTIONS:
            raise ValueError(f"resources.{key}: not an sbatch option ({', '.join(SBATCH_OPTIONS)})")
        if values.get(key) in (None, "", []):
            values[key] = value
    return values


def present(module: AnsibleModule, slurm: Slurm) -> None:
    params = module.params
    name = job_name(params)
    script = read_script(module)
    comment = (
        build_tag(params["session"], params["role"], params["ports"]) if params["session"] else ""
    )
    if params["comment"]:
        comment = f"{comment} {params['comment']}".strip()
    options = SbatchOptions(job_name=name, comment=comment or None, **sbatch_values(params))
    result: dict = {"changed": False, "script": script, "sbatch_argv": options.argv()}

    existing = [
        job
        for job in (slurm.queue(name=name) if name else [])
        if job.active and job.session == (params["session"] or "")
    ]
    if existing:
        job = existing[0]
    elif module.check_mode:
        result.update(
            changed=True, job_id=None, state="WOULD_SUBMIT", reason="check mode", nodes=[]
        )
        if module._diff:
            result["diff"] = {"before": "", "after": script, "after_header": f"sbatch job {name}"}
        module.exit_json(**result)
    else:
        job_id = slurm.submit(options, script)
        result["changed"] = True
        if module._diff:
            result["diff"] = {"before": "", "after": script, "after_header": f"sbatch job {name}"}
        job = slurm.show(job_id) or JobInfo(job_id=job_id, name=name or "", state="PENDING")
    result.update(job_result(job))
    if params["wait_for"] != "none" and not module.check_mode:
        job = wait(module, slurm, job, result)
        result.update(job_result(job))
    module.exit_json(**result)


def absent(module: AnsibleModule, slurm: Slurm) -> None:
    params = module.params
    jobs = [job for job in select_jobs(slurm, params) if job.active]
    ids = [job.job_id for job in jobs]
    result = {"changed": bool(ids), "cancelled": ids, "jobs": [job.as_dict() for job in jobs]}
    if ids and not module.check_mode:
        slurm.cancel(ids)
        if not slurm.wait_gone(ids, timeout=params["timeout"], interval=params["poll_interval"]):
            module.fail_json(
                msg=f"jobs {', '.join(ids)} still active {params['timeout']:g} s after scancel",
                **result,
            )
    module.exit_json(**result)


def info(module: AnsibleModule, slurm: Slurm) -> None:
    """Read jobs; with O(wait_for), first wait for the one job selected."""
    params = module.params
    jobs = select_jobs(slurm, params)
    result: dict = {"changed": False, "jobs": [job.as_dict() for job in jobs]}
    if params["wait_for"] != "none":
        if len(jobs) != 1:
            module.fail_json(msg=f"wait_for needs exactly one job, found {len(jobs)}", **result)
        result.update(job_result(jobs[0]))
        jobs = [wait(module, slurm, jobs[0], result)]
        result["jobs"] = [jobs[0].as_dict()]
    if len(jobs) == 1:
        result.update(job_result(jobs[0]))
    module.exit_json(**result)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {
                "type": "str",
                "choices": ["present", "absent", "info"],
                "default": "present",
            },
            "name": {"type": "str"},
            "session": {"type": "str"},
            "role": {"type": "str", "default": "job"},
            "ports": {"type": "list", "elements": "int", "default": []},
            "script": {"type": "str"},
            "script_path": {"type": "path"},
            "chdir": {"type": "path"},
            **{
                name: {
                    "type": kind,
                    **({"elements": "str", "default": []} if kind == "list" else {}),
                }
                for name, kind in SBATCH_OPTIONS.items()
            },
            "resources": {"type": "dict", "default": {}},
            "comment": {"type": "str"},
            "output": {"type": "str"},
            "error": {"type": "str"},
            "job_id": {"type": "str"},
            "wait_for": {
                "type": "str",
                "choices": ["none", "running", "healthy", "completed"],
                "default": "none",
            },
            "health_url": {"type": "str"},
            "health_status": {"type": "list", "elements": "int", "default": [200]},
            "health_headers": {"type": "dict", "default": {}, "no_log": True},
            "timeout": {"type": "float", "default": 60},
            "poll_interval": {"type": "float", "default": 0.2},
            "tail_lines": {"type": "int", "default": 20},
        },
        mutually_exclusive=[("script", "script_path")],
        required_if=[
            ("state", "present", ("script", "script_path"), True),
            ("state", "absent", ("job_id", "name", "session"), True),
            ("state", "info", ("job_id", "name", "session"), True),
            ("wait_for", "healthy", ("health_url",)),
        ],
        supports_check_mode=True,
    )

    def run(argv, stdin=None):
        # Values reach sbatch verbatim: run_command would otherwise expand '~' and '$VARS' in them.
        return module.run_command(argv, data=stdin, binary_data=False, expand_user_and_vars=False)

    slurm = Slurm(run)
    handlers = {"present": present, "absent": absent, "info": info}
    try:
        handlers[module.params["state"]](module, slurm)
    except (SlurmError, ValueError) as error:
        module.fail_json(msg=str(error))


if __name__ == "__main__":
    main()
