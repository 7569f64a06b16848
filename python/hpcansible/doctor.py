"""`doctor [--profile P]`: preflight on the target cluster (playbooks/doctor.yml)."""

from __future__ import annotations

import argparse

from hpcansible.runner import run_checklist
from hpcansible.sessions import profile_dir

REPORT_TASK = "Report the checklist"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check the cluster: SLURM, partition/account/QoS, programs, shared folder, internet",
        description="Run playbooks/doctor.yml against a site profile and print a checklist; "
        "exit 1 when something would stop a session.",
    )
    parser.add_argument(
        "--profile", default="testbed", help="site profile under inventory/ or a path"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show Ansible's output")
    parser.set_defaults(func=doctor)


def doctor(args: argparse.Namespace) -> int:
    profile = profile_dir(args.profile)
    return run_checklist(
        "doctor.yml",
        {"hpcansible_profile": str(profile)},
        REPORT_TASK,
        "doctor",
        inventory=[profile],
        verbose=args.verbose,
    )
