# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)

DOCUMENTATION = r"""
---
name: slurm_jobs
short_description: The nodes of one hpcansible session's SLURM jobs, as hosts
description:
  - Asks SLURM (C(squeue)) for the jobs of one session, selected by the session tag the
    M(hpcansible.hpc.slurm_job) module writes into each job's comment, or by a job name prefix.
  - Each node a job runs on becomes a host. Hosts are grouped by the job's role (C(service),
    C(client), C(prometheus), or any role a recipe names) and by state (C(slurm_running),
    C(slurm_pending)...), and get the job's variables.
  - When Ansible runs outside the cluster, SLURM is queried on a login host over SSH.
  - Pending jobs have no node yet; they are listed in the C(slurm_pending_jobs) variable of the
    C(all) group.
  - A host that runs several jobs of the session gets the variables of the first in role order
    (service, prometheus, client, others) and every job in C(slurm_jobs).
version_added: 0.1.0
author: hpcansible contributors
extends_documentation_fragment:
  - constructed
options:
  plugin:
    description: The name of this plugin; makes the file an inventory of this type.
    required: true
    choices: [hpcansible.hpc.slurm_jobs]
    type: str
  session:
    description:
      - Session tag to select. Empty selects every hpcansible-tagged job.
      - Templated against the environment, so V({{ lookup('env', 'HPCANSIBLE_SESSION') }}) works.
    type: str
    default: ""
    env:
      - name: HPCANSIBLE_SESSION
  name_prefix:
    description: Also select untagged jobs whose name starts with this prefix (role = rest of the name).
    type: str
    default: ""
  user:
    description: Only jobs of this user (C(squeue --user)). Empty means all users.
    type: str
    default: ""
  include_finished:
    description: Also list jobs that ended recently (C(squeue --states=all)).
    type: bool
    default: false
  login_host:
    description: Run squeue on this host over SSH. Empty runs it locally.
    type: str
    default: ""
    env:
      - name: HPCANSIBLE_LOGIN_HOST
  login_port:
    description: SSH port of O(login_host). V(0) leaves it to the SSH configuration.
    type: int
    default: 0
    env:
      - name: HPCANSIBLE_LOGIN_PORT
  login_user:
    description: SSH user for O(login_host). Empty uses the SSH configuration's.
    type: str
    default: ""
  ssh_args:
    description: Further ssh arguments (for example C(-i ~/.ssh/key)).
    type: list
    elements: str
    default: []
  command_timeout:
    description: Seconds allowed for one SLURM query.
    type: int
    default: 30
"""

EXAMPLES = r"""
# inventory/session.slurm_jobs.yml, the session taken from HPCANSIBLE_SESSION:
#   plugin: hpcansible.hpc.slurm_jobs

# Through the login node of a cluster, with extra groups and variables
plugin: hpcansible.hpc.slurm_jobs
session: 20261129-ollama
login_host: login.lxp.lu
login_port: 8822
login_user: u100000
compose:
  service_url: "'http://' ~ inventory_hostname ~ ':' ~ (service_ports | first)"
groups:
  gpu_jobs: slurm_partition == 'gpu'
keyed_groups:
  - key: slurm_partition
    prefix: partition
"""

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable
from ansible_collections.hpcansible.hpc.plugins.module_utils.slurm import (
    JobInfo,
    Slurm,
    SlurmError,
    job_id_key,
    subprocess_runner,
)

ROLE_ORDER = ("service", "prometheus", "client")


def role_rank(job: JobInfo) -> int:
    return ROLE_ORDER.index(job.role) if job.role in ROLE_ORDER else len(ROLE_ORDER)


def host_vars(job: JobInfo) -> dict:
    return {
        "slurm_job_id": job.job_id,
        "slurm_job_state": job.state,
        "slurm_job_name": job.name,
        "slurm_partition": job.partition,
        "slurm_role": job.role,
        "slurm_session": job.session,
        "slurm_time_left": job.time_left,
        "service_ports": job.ports,
    }


class InventoryModule(BaseInventoryPlugin, Constructable):
    NAME = "hpcansible.hpc.slurm_jobs"

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith(("slurm_jobs.yml", "slurm_jobs.yaml"))

    def command_runner(self):
        login_host = self.get_option("login_host")
        timeout = self.get_option("command_timeout")
        prefix: list[str] = []
        if login_host:
            prefix = ["ssh", "-o", "BatchMode=yes"]
            if self.get_option("login_port"):
                prefix += ["-p", str(self.get_option("login_port"))]
            if self.get_option("login_user"):
                prefix += ["-l", self.get_option("login_user")]
            prefix += [*self.get_option("ssh_args"), login_host, "--"]

        return subprocess_runner(prefix, timeout)

    def selected(self, jobs: list[JobInfo]) -> list[JobInfo]:
        session = self.get_option("session")
        prefix = self.get_option("name_prefix")
        chosen = []
        for job in jobs:
            if job.tag and (not session or job.session == session):
                chosen.append(job)
            elif prefix and job.name.startswith(prefix):
                job.tag = {"session": session or prefix, "role": job.name[len(prefix) :] or "job"}
                chosen.append(job)
        return chosen

    def parse(self, inventory, loader, path, cache=True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        if self.get_option("session") and self.templar.is_template(self.get_option("session")):
            self.set_option("session", self.templar.template(self.get_option("session")))
        slurm = Slurm(self.command_runner())
        try:
            jobs = slurm.queue(
                user=self.get_option("user") or None,
                all_states=self.get_option("include_finished"),
            )
        except SlurmError as error:
            where = self.get_option("login_host") or "this host"
            raise AnsibleParserError(
                f"{path}: cannot list SLURM jobs on {where}: {error}"
            ) from error
        self.populate(self.selected(jobs))

    def populate(self, jobs: list[JobInfo]) -> None:
        strict = self.get_option("strict")
        pending = []
        for job in sorted(jobs, key=lambda job: (role_rank(job), job_id_key(job.job_id))):
            if not job.nodes:
                pending.append(job.as_dict())
                continue
            groups = [job.role or "job", f"slurm_{job.state.lower()}"]
            for node in job.nodes:
                first_job_on_node = node not in self.inventory.hosts
                self.inventory.add_host(node)
                for group in groups:
                    self.inventory.add_group(group)
                    self.inventory.add_child(group, node)
                known = self.inventory.get_host(node).vars.get("slurm_jobs", [])
                self.inventory.set_variable(node, "slurm_jobs", [*known, job.as_dict()])
                if first_job_on_node:
                    for key, value in host_vars(job).items():
                        self.inventory.set_variable(node, key, value)
                variables = self.inventory.get_host(node).get_vars()
                self._set_composite_vars(self.get_option("compose"), variables, node, strict=strict)
                self._add_host_to_composed_groups(
                    self.get_option("groups"), variables, node, strict=strict
                )
                self._add_host_to_keyed_groups(
                    self.get_option("keyed_groups"), variables, node, strict=strict
                )
        self.inventory.set_variable("all", "slurm_pending_jobs", pending)
        self.inventory.set_variable("all", "slurm_session", self.get_option("session"))
        self.display.vvv(f"slurm_jobs: {len(jobs)} jobs of the session, {len(pending)} pending")
