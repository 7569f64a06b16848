#!/usr/bin/python
# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
# The work is done by the action plugin of the same name (plugins/action/session_files.py).

DOCUMENTATION = r"""
---
module: session_files
short_description: Write a role's folders, secrets and files in one task, in place
description:
  - Creates O(folders), chooses O(secrets) and writes O(files) on SLURM's host, each file
    through a temporary file in its folder that is checked (O(files[].validate)) and then
    renamed into place, with its mode.
  - When SLURM's host is this machine (connection C(local)) it all happens in-process on the
    controller, with no module execution; otherwise with one shell command on that host, in
    which every path is quoted and every file's bytes are base64.
  - Templates are rendered as M(ansible.builtin.template) renders them (the role's
    C(templates/) folder, C(trim_blocks), C(ansible_managed)); the secrets chosen by the same
    task are variables there.
  - The rules live in C(plugins/module_utils/session_files.py).
version_added: 0.3.0
author: hpcansible contributors
options:
  folders:
    description: Folders created with their parents, mode O(folder_mode).
    type: list
    elements: path
    default: []
  folder_mode:
    description: Mode of O(folders).
    type: raw
    default: "0700"
  secrets:
    description:
      - Secrets kept in 0600 files. Each takes C(path), C(fact) (a name or a list of names
        that receive the value as facts), C(value), C(length) (default 32) and C(newline)
        (end the file with one; default true).
      - The given C(value) wins, else the one an earlier run kept in C(path), else a new one
        of C(length) letters and digits. Set C(no_log) on the task.
    type: list
    elements: dict
    default: []
  files:
    description:
      - Files to write. Each takes C(dest), one of C(content), C(template) (a file of the
        role's C(templates/)) or C(src) (a file of the role's C(files/)), C(mode) (default
        0600), C(validate) (a command with C(%s) for the file, run before it is renamed into
        place) and C(enabled) (default true; false skips the file).
      - A C(dest) ending in C(/) keeps the source's name.
    type: list
    elements: dict
    default: []
attributes:
  action:
    support: full
  check_mode:
    support: full
    details: Nothing is written in check mode unless the task sets C(check_mode=false).
  diff_mode:
    support: none
notes:
  - Over SSH, C(changed) is true whenever there is something to write (the files are not read back).
"""

EXAMPLES = r"""
- name: Write Redis's folder, password and redis.conf (mode 0600)
  hpcansible.hpc.session_files:
    folders: ["{{ hpcansible_session_dir }}/service/redis"]
    secrets:
      - path: "{{ hpcansible_session_dir }}/service/redis/password"
        fact: [redis_service_password, redis_service_client_secret]
        value: "{{ redis_service_password }}"
    files:
      - dest: "{{ hpcansible_session_dir }}/service/redis/redis.conf"
        template: redis.conf.j2
  no_log: true

- name: Write prometheus.yml, checked by promtool
  hpcansible.hpc.session_files:
    files:
      - dest: /shared/sessions/s1/prometheus/prometheus.yml
        template: prometheus.yml.j2
        validate: promtool check config %s
"""

RETURN = r"""
files:
  description: The files written (or that would be, in check mode).
  returned: success
  type: list
  elements: str
folders:
  description: The folders created.
  returned: success
  type: list
  elements: str
"""
