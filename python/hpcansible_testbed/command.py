"""`python -m hpcansible testbed up|down|status`: the one-machine SLURM cluster."""

from __future__ import annotations

import argparse
import sys

from hpcansible.runner import run_checklist

REPORT_TASK = "Report what is up and what is missing"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "testbed",
        help="bring the one-machine SLURM testbed up, down, or show its status",
        description=(
            "A real SLURM cluster on this machine: node1..nodeN in network namespaces, one slurmd "
            "each, slurmctld, munge, and a login node running sshd on port 8822. Needs root."
        ),
    )
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--nodes", type=int, default=3, help="number of compute nodes (default 3)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show Ansible's output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.nodes < 1 or args.nodes > 50:
        print("hpcansible: error: --nodes must be between 1 and 50", file=sys.stderr)
        return 2
    failed = run_checklist(
        "testbed.yml",
        {"testbed_state": args.action, "testbed_node_count": args.nodes},
        REPORT_TASK,
        f"testbed {args.action}",
        verbose=args.verbose,
    )
    if not failed and args.action != "status":
        print(f"testbed {args.action}: done")
    return failed
