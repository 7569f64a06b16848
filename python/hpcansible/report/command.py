"""`report ID`: write the report on demand; and the hook `stop` and `run --wait` call."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hpcansible.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write report.html and report.md into a session's directory",
        description="Build the session's report from the client's results and the session's "
        "Prometheus (live while its job runs, else its TSDB snapshot served on 127.0.0.1): "
        "report.html (self-contained) and report.md with report_files/*.png.",
    )
    parser.add_argument("session", metavar="ID", help="session id, session directory or results")
    parser.add_argument("--binary", default="prometheus", help="prometheus program for snapshots")
    parser.set_defaults(func=report_command)


def report_command(args: argparse.Namespace) -> int:
    from hpcansible.report.build import write_report

    started = time.monotonic()
    paths = write_report(args.session, args.binary)
    for line in paths.missing:
        print(f"hpcansible: report: not shown: {line}", file=sys.stderr)
    print(f"{paths.html}")
    print(f"{paths.markdown}  (images in {paths.markdown.parent / 'report_files'})")
    print(f"report written in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


def write_report_or_warn(session: str | Path) -> Path | None:
    """For `stop` and `run --wait`: the report's path, or one warning line; never raises,
    so that ending a session never fails on its report."""
    try:
        from hpcansible.report.build import write_report

        paths = write_report(session)
    except UserError as error:
        print(f"hpcansible: no report: {error}", file=sys.stderr)
        return None
    except Exception as error:  # a report bug must not fail the stop
        print(f"hpcansible: no report: {type(error).__name__}: {error}", file=sys.stderr)
        return None
    print(f"report      {paths.html}", file=sys.stderr)
    return paths.html
