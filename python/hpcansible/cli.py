"""`python -m hpcansible`: the command line. Each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import traceback
from collections.abc import Sequence

from hpcansible import __version__
from hpcansible.cluster import slurm_error_class
from hpcansible.errors import UserError

# Each module exposes register(subparsers); the parser it adds sets `func(args) -> int`.
SUBCOMMAND_MODULES = (
    "hpcansible.run",
    "hpcansible.status",
    "hpcansible.stop",
    "hpcansible.logs",
    "hpcansible.tunnel",
    "hpcansible.snapshot",
    "hpcansible.report.command",
    "hpcansible.compare",
    "hpcansible.doctor",
    "hpcansible_testbed.command",
    "hpcansible_jobs.bench.cli",
)

EXIT_CODES = """exit codes:
  0    success
  1    a step or check failed (what already runs keeps running; see the message)
  2    usage or recipe error (nothing was submitted)
  130  interrupted (Ctrl-C); the session's jobs were cancelled
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hpcansible",
        description="Benchmark a service on a SLURM cluster and watch it in Prometheus.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hpcansible {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def interrupt(number: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    # Sessions hold results, logs and secrets on a filesystem other users share: what this
    # command and its Ansible children create is the user's alone (0700 folders, 0600 files).
    os.umask(0o077)
    args = build_parser().parse_args(argv)
    # SIGTERM and SIGHUP end a command like Ctrl-C does: its cleanup runs (run installs its own).
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    try:
        return int(args.func(args))
    except UserError as error:
        print(f"hpcansible: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("hpcansible: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `list | head`: the reader left. Say nothing; point stdout at /dev/null so that the
        # interpreter's own flush at exit does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as error:  # an internal bug: one line unless asked for the traceback
        if isinstance(error, slurm_error_class()):
            # SLURM's own words (controller down, munge refused...): the user's to act on
            print(f"hpcansible: error: SLURM: {error}", file=sys.stderr)
            return 1
        if os.environ.get("HPCANSIBLE_DEBUG"):
            traceback.print_exc()
        print(
            f"hpcansible: internal error: {type(error).__name__}: {error} "
            "(run with HPCANSIBLE_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 1
