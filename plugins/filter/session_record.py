# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""The session's naming rules, shared with the CLI (module_utils/session_record.py);
documented in new_session_id.yml and tunnel_command.yml."""

from __future__ import annotations

from ansible_collections.hpcansible.hpc.plugins.module_utils.session_record import (
    new_session_id,
    tunnel_command,
)


class FilterModule:
    def filters(self) -> dict:
        return {"new_session_id": new_session_id, "tunnel_command": tunnel_command}
