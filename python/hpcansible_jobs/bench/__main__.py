"""`python -m hpcansible_jobs.bench`: the benchmark client as the client job runs it, with no
Ansible and no CLI on the compute node. Errors are one line, as in the CLI."""

from __future__ import annotations

import os
import signal
import sys
import traceback

from hpcansible_jobs.bench.cli import build_parser
from hpcansible_jobs.errors import UserError


def stop(number: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # scancel sends SIGTERM: end like Ctrl-C, so that what was measured is written.
    signal.signal(signal.SIGTERM, stop)
    try:
        return int(args.func(args))
    except UserError as error:
        print(f"hpcansible bench: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("hpcansible bench: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: one line unless asked for the traceback
        if os.environ.get("HPCANSIBLE_DEBUG"):
            traceback.print_exc()
        print(
            f"hpcansible bench: internal error: {type(error).__name__}: {error} "
            "(HPCANSIBLE_DEBUG=1 shows the traceback; please report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
