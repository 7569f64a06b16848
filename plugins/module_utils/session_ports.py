# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Ports of concurrent sessions: the ports every session's jobs use, and a session's ports
shifted clear of them. One rule for the recipes action (which returns the shifted role
variables) and the filters used_ports and avoid_ports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def used_ports(hostvars: Mapping[str, Any]) -> list[int]:
    """Every port a job of any session serves or will serve (running or pending)."""
    ports: set[int] = set()
    for host in hostvars:
        variables = hostvars[host]
        for job in [
            *(variables.get("slurm_jobs") or []),
            *(variables.get("slurm_pending_jobs") or []),
        ]:
            ports.update(int(port) for port in job.get("ports", []))
    return sorted(ports)


def avoid_ports(role_vars: Mapping[str, Any], used: list[int], limit: int = 1000) -> dict:
    """Shift every *_port of role_vars by the smallest offset that collides with none of `used`.

    Two sessions may land on the same node; this keeps their services, exporters, clients and
    Prometheus apart without asking the user.
    """
    taken = set(used)
    ports = [int(value) for name, value in role_vars.items() if name.endswith("_port")]
    for offset in range(limit):
        if not taken.intersection(port + offset for port in ports):
            return {
                name: int(value) + offset if name.endswith("_port") else value
                for name, value in role_vars.items()
            }
    raise ValueError(f"no free ports within {limit} above {sorted(ports)}")
