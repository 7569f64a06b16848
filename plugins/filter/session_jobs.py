# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Pick a session's jobs out of what the slurm_jobs inventory plugin found."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.hpcansible.hpc.plugins.module_utils.slurm import (
    NoRunningJob,
    inventory_running_job,
    inventory_session_jobs,
)

DOCUMENTATION = r"""
---
name: session_jobs
short_description: The jobs of one session and role, from the slurm_jobs inventory
description:
  - The P(hpcansible.hpc.slurm_jobs#inventory) plugin puts every job it finds into the
    C(slurm_jobs) variable of the node it runs on. This filter collects the jobs of one session
    (and role) from all hosts, once each, oldest first.
version_added: 0.1.0
author: hpcansible contributors
positional: _input, session, role
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  session:
    description: Session id.
    type: str
    required: true
  role:
    description: Job role (service, client, prometheus); all roles when omitted.
    type: str
"""

EXAMPLES = r"""
- name: Where the service runs
  ansible.builtin.debug:
    msg: "{{ (hostvars | hpcansible.hpc.session_jobs(session_id, 'service') | first).nodes }}"
"""

RETURN = r"""
_value:
  description: Job dictionaries (job_id, name, state, nodes, ports, role, session, ...).
  type: list
  elements: dict
"""


def running_session_job(
    hostvars: Mapping[str, Any], session: str, role: str, required: bool = True
) -> dict[str, Any]:
    """Node, nodes and ports of the role's running job ({} for a role used alone)."""
    try:
        return inventory_running_job(hostvars, str(session), str(role), boolean(required))
    except NoRunningJob as error:
        raise AnsibleFilterError(str(error)) from None


def session_jobs(hostvars: Mapping[str, Any], session: str, role: str | None = None) -> list[dict]:
    return inventory_session_jobs(hostvars, session, role)


class FilterModule:
    def filters(self) -> dict:
        return {"session_jobs": session_jobs, "running_session_job": running_session_job}
