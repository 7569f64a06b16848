"""`[n/6]` progress lines for a session, fed by ansible-runner events."""

from __future__ import annotations

import re
import sys
import threading
import time
from typing import Any, TextIO

STEP_PLAY = re.compile(r"^\[(\d)/6\]\s*(.*)$")
# playbooks/session/step_failed.yml ends a failed step with this task; earlier failures in a
# step may be rescued, this one never is.
STOP_TASK = "Stop the session with the reason"
SPINNER = "|/-\\"


class StepProgress:
    """Prints one line per step with its elapsed time; a spinner while a step waits (on a tty)."""

    def __init__(self, stream: TextIO = sys.stderr, quiet: bool = False) -> None:
        self.stream = stream
        self.quiet = quiet
        self.started = time.monotonic()
        self.current: tuple[int, str] | None = None
        self.step_started = self.started
        self.task = ""
        self.failed = False
        self.steps_done: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._spinner: threading.Thread | None = None
        if stream.isatty() and not quiet:
            self._spinner = threading.Thread(target=self._spin, daemon=True)
            self._spinner.start()

    def _write(self, text: str) -> None:
        if not self.quiet:
            self.stream.write(text)
            self.stream.flush()

    def _spin(self) -> None:
        index = 0
        while not self._stop.wait(0.2):
            with self._lock:
                if self.current is None:
                    continue
                number, name = self.current
                elapsed = time.monotonic() - self.step_started
                task = f" - {self.task}" if self.task else ""
                line = f"[{number}/6] {name} {SPINNER[index % 4]} {elapsed:5.1f}s{task}"
                self._write("\r\033[K" + line[:110])
            index += 1

    def _finish_step(self, status: str) -> None:
        if self.current is None:
            return
        number, name = self.current
        elapsed = time.monotonic() - self.step_started
        prefix = "\r\033[K" if self._spinner else ""
        self._write(f"{prefix}[{number}/6] {name:<28} {status:<7} {elapsed:6.1f}s\n")
        if status == "done":
            self.steps_done.append(number)
        self.current = None

    def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        with self._lock:
            if self.failed:
                return
            if kind == "playbook_on_play_start":
                self._finish_step("done")
                match = STEP_PLAY.match(data.get("play", ""))
                if match and match.group(1) != "0":
                    self.current = (int(match.group(1)), match.group(2).strip())
                    self.step_started = time.monotonic()
                    self.task = ""
                    if not self._spinner:  # a log or a pipe: say when each step starts, too
                        self._write(f"[{match.group(1)}/6] {self.current[1]} ...\n")
            elif kind == "playbook_on_task_start":
                self.task = data.get("task", "")
            elif kind == "runner_on_unreachable" or (
                kind == "runner_on_failed"
                and (self.current is None or data.get("task") == STOP_TASK)
                and not data.get("ignore_errors")
            ):
                self.failed = True
                self._finish_step("failed")

    def close(self, ok: bool) -> None:
        self._stop.set()
        with self._lock:
            self._finish_step("done" if ok else "stopped")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
