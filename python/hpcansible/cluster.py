"""SLURM as a site profile reaches it: locally, or on its login host over SSH.

The CLI uses this for what must be fast and must work when Ansible cannot (status, and
cancelling a session's jobs within seconds of Ctrl-C). It drives the collection's own SLURM
layer (plugins/module_utils/slurm.py), so the parsing and the session tags are the module's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from hpcansible.sessions import collection_module_utils


@dataclass(frozen=True)
class LoginHost:
    host: str
    port: int = 0
    user: str = ""

    def ssh_argv(self) -> list[str]:
        argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
        if self.port:
            argv += ["-p", str(self.port)]
        if self.user:
            argv += ["-l", self.user]
        return [*argv, self.host, "--"]


def login_host(profile: Path) -> LoginHost | None:
    """The login host the profile's slurm_jobs inventory queries, or None for local SLURM."""
    for path in sorted(profile.glob("*slurm_jobs.y*ml")):
        config = yaml.safe_load(path.read_text()) or {}
        if config.get("login_host"):
            return LoginHost(
                str(config["login_host"]),
                int(config.get("login_port") or 0),
                str(config.get("login_user") or ""),
            )
    return None


def command_runner(login: LoginHost | None, timeout: float = 30):
    slurm_utils = collection_module_utils("slurm")
    return slurm_utils.subprocess_runner(login.ssh_argv() if login else (), timeout)


def slurm_for(profile: Path):
    """A module_utils.slurm.Slurm bound to the profile's SLURM."""
    slurm_utils = collection_module_utils("slurm")
    return slurm_utils.Slurm(command_runner(login_host(profile)))


def cancel_session(profile: Path, session_id: str, timeout: float = 15) -> list[str]:
    """Cancel every job carrying the session's tag; wait until they are gone. Their ids."""
    slurm = slurm_for(profile)
    jobs = [job for job in slurm.session_jobs(session_id) if job.active]
    ids = [job.job_id for job in jobs]
    if ids:
        slurm.cancel(ids)
        slurm.wait_gone(ids, timeout=timeout)
    return ids


def slurm_error_class() -> type[Exception]:
    """The collection's SlurmError, for callers that turn it into a one-line message."""
    return collection_module_utils("slurm").SlurmError
