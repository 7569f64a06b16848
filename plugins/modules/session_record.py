#!/usr/bin/python
# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
# The work is done by the action plugin of the same name (plugins/action/session_record.py).

DOCUMENTATION = r"""
---
module: session_record
short_description: Open and update a session's session.json (its one writer)
description:
  - Merges O(update) into the session's record and writes C(session.json) atomically (a
    temporary file renamed into place, mode 0600) into the local session folder
    (C(hpcansible_local_session_dir)) and, where SLURM's host is not this one, into the
    cluster-side folder (C(hpcansible_session_dir)) with one command there.
  - Runs on the controller, in-process. The schema of the record is C(SCHEMA) in
    C(plugins/module_utils/session_record.py); a key or type outside it fails the task.
  - Sets the fact C(session_job_record) to the merged record, which later tasks read.
version_added: 0.2.0
author: hpcansible contributors
options:
  open:
    description:
      - Start a new record (replacing a dry run's). Fails when a session of this id exists
        already, unless it was a dry run.
    type: bool
    default: false
  update:
    description: Changes merged into the record; mappings merge recursively, other values replace.
    type: dict
    default: {}
  stamp:
    description: Dotted keys (C(steps.3.finished)) set to the current time, ISO 8601 UTC.
    type: list
    elements: str
    default: []
  secrets:
    description: Secret files generated once (32 letters and digits, mode 0600) under C(secrets/) of the local session folder.
    type: list
    elements: str
    default: []
  files:
    description: Further files written atomically (0600) into the local session folder, by relative path.
    type: dict
    default: {}
  folders:
    description: Folders (0700) created in the local session folder.
    type: list
    elements: str
    default: []
  remote_folders:
    description: Folders (0700) created in the cluster-side session folder.
    type: list
    elements: str
    default: []
attributes:
  action:
    support: full
  check_mode:
    support: full
    details: The record is written in check mode too, so that a dry run shows its session.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Record the end of step 3
  hpcansible.hpc.session_record:
    update:
      steps: {"3": {status: done}}
    stamp: [steps.3.finished]
"""

RETURN = r"""
record:
  description: The record as written.
  returned: success
  type: dict
"""
