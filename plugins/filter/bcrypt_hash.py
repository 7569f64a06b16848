# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""bcrypt hash of a password, for Prometheus's web config (basic_auth_users)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: bcrypt_hash
short_description: bcrypt hash of a password, as Prometheus's web config wants it
description:
  - Hashes the input with bcrypt (a fresh salt each call) using the C(bcrypt) Python package on
    the controller. Prometheus's C(--web.config.file) takes the result in C(basic_auth_users).
  - Unlike C(password_hash('bcrypt')), it needs neither passlib nor the system's crypt(3).
version_added: 0.2.0
author: hpcansible contributors
positional: _input, rounds
options:
  _input:
    description: The password.
    type: str
    required: true
  rounds:
    description: bcrypt cost factor (log2 of the rounds); Prometheus checks every request with it.
    type: int
    default: 10
requirements:
  - bcrypt (Python package)
"""

EXAMPLES = r"""
- name: A web config for Prometheus
  ansible.builtin.copy:
    content: "{{ {'basic_auth_users': {'hpcansible': password | hpcansible.hpc.bcrypt_hash}} | to_nice_yaml }}"
    dest: web.yml
    mode: "0600"
"""

RETURN = r"""
_value:
  description: The hash, C($2b$<rounds>$...).
  type: str
"""

from ansible.errors import AnsibleFilterError


def bcrypt_hash(password: str, rounds: int = 10) -> str:
    try:
        import bcrypt
    except ImportError as error:
        raise AnsibleFilterError(
            "bcrypt_hash needs the Python package bcrypt on the controller (pip install bcrypt)"
        ) from error
    return bcrypt.hashpw(str(password).encode(), bcrypt.gensalt(rounds)).decode()


class FilterModule:
    def filters(self) -> dict:
        return {"bcrypt_hash": bcrypt_hash}
