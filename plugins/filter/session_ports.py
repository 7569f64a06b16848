# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Ports of concurrent sessions: the ports every session's jobs use, and a session's ports
shifted clear of them (documented in used_ports.yml and avoid_ports.yml; the rules are in
module_utils/session_ports.py, which the recipes action uses too)."""

from __future__ import annotations

from ansible_collections.hpcansible.hpc.plugins.module_utils.session_ports import (
    avoid_ports,
    used_ports,
)


class FilterModule:
    def filters(self) -> dict:
        return {"used_ports": used_ports, "avoid_ports": avoid_ports}
