"""Which of the processes NVML reports on a GPU belong to this SLURM job.

A process is the job's when its environment carries the job's SLURM_JOB_ID (SLURM gives it to
every process of the job, Apptainer passes it into containers), or when it descends from the
job script (the exporter's parent), for processes that rewrote their environment. Processes
of other users cannot be read and are not the job's. Without a job id (outside SLURM) every
process counts.
"""

from __future__ import annotations

import os
from pathlib import Path

MAX_DEPTH = 64


class JobProcesses:
    def __init__(self, job_id: str, job_root_pid: int | None = None, proc: Path = Path("/proc")):
        self.job_id = job_id
        self.job_root_pid = os.getppid() if job_root_pid is None else job_root_pid
        self.proc = proc

    def _read(self, pid: int, name: str) -> bytes | None:
        try:
            return (self.proc / str(pid) / name).read_bytes()
        except OSError:
            return None

    def _parent(self, pid: int) -> int | None:
        stat = self._read(pid, "stat")
        if not stat:
            return None
        # The command name (field 2) may hold spaces and parentheses: read after the last ')'.
        fields = stat.rsplit(b")", 1)[-1].split()
        return int(fields[1]) if len(fields) > 1 else None

    def belongs(self, pid: int) -> bool:
        if not self.job_id:
            return True
        environ = self._read(pid, "environ")
        if environ and f"SLURM_JOB_ID={self.job_id}".encode() in environ.split(b"\0"):
            return True
        current: int | None = pid
        for _ in range(MAX_DEPTH):
            if current is None or current <= 1:
                return False
            if current == self.job_root_pid:
                return True
            current = self._parent(current)
        return False

    def name(self, pid: int) -> str:
        comm = self._read(pid, "comm")
        return comm.decode(errors="replace").strip() if comm else ""
