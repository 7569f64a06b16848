"""Running a native tool: its output read while it runs, its CPU, signals passed on.

The tool is a plain child process (never daemonized: scancel stops the job's processes).
Its stdout and stderr are read by two threads; every line (redis-benchmark ends its progress
lines with a carriage return) goes to `on_line` as it arrives, so that the live metrics move
while the tool runs. SIGTERM (scancel) and SIGINT (Ctrl-C) are passed on to the tool, which
then ends; what it printed until then is kept.

Secrets reach the tool through its environment (readable only by the job's owner) or a 0600
file. redis-benchmark takes its password only as an argument (-a), which `ps` shows to every
user of the node: there the argument is the placeholder @HPCANSIBLE_SECRET and a preload
library (secret_argv.c, built once with the node's C compiler into a private cache) swaps in
the password from the environment before the tool's main() runs.
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hpcansible_jobs.bench.native.base import Execution, Invocation, ToolFailed

SECRET_ARGV_SOURCE = Path(__file__).with_name("secret_argv.c")
LINE_END = re.compile(r"[\r\n]")
# Seconds a tool gets to end after SIGINT before it is killed.
STOP_GRACE_S = 5.0


def cache_dir() -> Path:
    """A private per-user cache (0700) for the preload library."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hpcansible"
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    return base


def secret_argv_library() -> Path:
    """The preload library that swaps @HPCANSIBLE_SECRET for the secret (built once)."""
    source = SECRET_ARGV_SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:16]
    library = cache_dir() / f"secret-argv-{digest}.so"
    if library.exists():
        return library
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        raise ToolFailed(
            "redis-benchmark takes a password only as an argument, which ps shows to every "
            "user; hpcansible hides it with a small preload library built with a C compiler, "
            "and none was found (install gcc, or use engine: python)"
        )
    partial = library.with_suffix(f".{os.getpid()}.tmp")
    done = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(partial), str(SECRET_ARGV_SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise ToolFailed(f"cannot build {library.name}: {done.stderr.strip()[-300:]}")
    partial.rename(library)  # atomic: a concurrent job sees the old name or the whole file
    return library


def tool_environment(invocation: Invocation) -> dict[str, str]:
    env = {**os.environ, **invocation.env, "LC_ALL": "C"}
    if invocation.secret_argument:
        preload = str(secret_argv_library())
        env["LD_PRELOAD"] = f"{preload} {env['LD_PRELOAD']}" if env.get("LD_PRELOAD") else preload
    return env


def _read(stream, on_line: Callable[[str], None], kept: list[str]) -> None:
    """Read a pipe to its end, handing every complete line (\\r or \\n ended) on."""
    pending = ""
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            break
        text = chunk.decode("utf-8", "replace")
        kept.append(text)
        pending += text
        *lines, pending = LINE_END.split(pending)
        for line in lines:
            if line.strip():
                on_line(line)
    if pending.strip():
        on_line(pending)


def execute(
    invocation: Invocation,
    on_line: Callable[[str], None] | None = None,
    cwd: Path | None = None,
    on_start: Callable[[int], None] | None = None,
) -> Execution:
    """Run the tool to its end; signals that arrive meanwhile end it early."""
    env = tool_environment(invocation)
    handler = on_line or (lambda _line: None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start_ns = time.time_ns()
    try:
        process = subprocess.Popen(
            invocation.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
        )
    except OSError as error:
        raise ToolFailed(f"{invocation.argv[0]}: cannot start ({error.strerror})") from None
    interrupted = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        interrupted.set()
        if process.poll() is None:
            process.send_signal(signal.SIGINT)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    stdout: list[str] = []
    stderr: list[str] = []
    readers = [
        threading.Thread(target=_read, args=(process.stdout, handler, stdout), daemon=True),
        threading.Thread(target=_read, args=(process.stderr, handler, stderr), daemon=True),
    ]
    try:
        for reader in readers:
            reader.start()
        if on_start is not None:
            on_start(process.pid)
        while True:
            try:
                process.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if interrupted.is_set():
                    try:
                        process.wait(timeout=STOP_GRACE_S)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
                    break
        for reader in readers:
            reader.join(timeout=10)
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
        if process.poll() is None:
            process.kill()
            process.wait()
    end_ns = time.time_ns()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Execution(
        returncode=process.returncode,
        stdout="".join(stdout),
        stderr="".join(stderr),
        start_ns=start_ns,
        end_ns=end_ns,
        cpu_s=cpu_s,
        interrupted=interrupted.is_set(),
    )


def run_quietly(invocation: Invocation, what: str, cwd: Path | None = None) -> Execution:
    """A preparation command (untimed): it must succeed, else one line with its output."""
    done = execute(invocation, cwd=cwd)
    if done.interrupted:
        raise KeyboardInterrupt
    if done.returncode != 0:
        from hpcansible_jobs.bench.native.base import tail

        raise ToolFailed(
            f"{what} failed (exit {done.returncode}): {tail(done.stderr or done.stdout)}"
        )
    return done
