# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""The keys every recipe shares: SLURM resources, environment, containers, installs, and the
seed-era keys that ask for commands (accepted, never run, each with a note saying so).

Nothing here imports Ansible.
"""

from __future__ import annotations

import re
from typing import Any

from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_schema import (
    Checker,
    RecipeError,
    boolean,
    integer_in,
    list_of,
    mapping,
    matching,
    memory,
    one_of,
    shown,
    slurm_time,
    string_map,
    text,
    text_of,
)

# --- SLURM resources: each value is one sbatch option, checked as SLURM would read it -------

SLURM_NAME = r"[A-Za-z0-9_.+-]{1,64}"
SLURM_NAMES = rf"{SLURM_NAME}(?:,{SLURM_NAME}){{0,31}}"
GRES_ITEM = r"(?:gres/)?[A-Za-z0-9_]{1,32}(?::[A-Za-z0-9_.-]{1,32}){0,2}"
GPUS_ITEM = r"(?:[A-Za-z0-9_.-]{1,32}:)?\d{1,4}"
HOSTLIST = r"[A-Za-z0-9_.,\[\]-]{1,1024}"
MAX_NODES = 100_000
# What the session itself sets or what would break its bookkeeping: its name, tag (comment),
# logs and folder; a command (--wrap), job arrays, or an sbatch that waits or does not submit.
SESSION_SBATCH_OPTIONS = (
    "--job-name",
    "--comment",
    "--output",
    "--error",
    "--input",
    "--chdir",
    "--parsable",
    "--wrap",
    "--array",
    "--wait",
    "--test-only",
    "--help",
    "--usage",
    "--version",
)
SESSION_SBATCH_SHORT = ("-J", "-o", "-e", "-i", "-D", "-W", "-a", "-h", "-u", "-V")
# sbatch options that take no value, or an optional one only as --option=value: a word after
# them is not their value.
SBATCH_FLAGS = (
    "--exclusive",
    "--hold",
    "--requeue",
    "--no-requeue",
    "--overcommit",
    "--oversubscribe",
    "--contiguous",
    "--spread-job",
    "--use-min-nodes",
    "--quiet",
    "--verbose",
    "--ignore-pbs",
    "--no-kill",
    "--reboot",
    "--get-user-env",
    "--propagate",
    "--nice",
    "-H",
    "-O",
    "-Q",
    "-v",
    "-k",
    "-s",
)


def node_count(value: Any, where: str) -> str:
    """sbatch --nodes: a count or a range min-max, from 1 to MAX_NODES."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    string = text_of(32)(value, where).strip()
    match = re.fullmatch(r"(\d{1,7})(?:-(\d{1,7}))?", string)
    if not match:
        raise RecipeError(f"{where}: expected a node count such as 1 or 2-4, got {shown(value)}")
    low, high = int(match.group(1)), int(match.group(2) or match.group(1))
    if not 1 <= low <= high <= MAX_NODES:
        raise RecipeError(f"{where}: {string!r} must be from 1 to {MAX_NODES} nodes (min-max)")
    return string


def sbatch_argument(value: Any, where: str) -> str:
    """One element of extra_args: an option (--exclusive, --mail-type=END) or its value."""
    argument = text_of(256)(value, where)
    if not argument.startswith("-"):
        return argument  # the value of the option before it (`--gres`, `gpu:1`)
    if argument.startswith("--"):
        name = argument.split("=", 1)[0]
        # sbatch takes any unambiguous abbreviation: --out means --output.
        taken = [
            option for option in SESSION_SBATCH_OPTIONS if len(name) > 2 and option.startswith(name)
        ]
    else:
        taken = [option for option in SESSION_SBATCH_SHORT if argument.startswith(option)]
    if taken:
        raise RecipeError(
            f"{where}: {shown(argument)}: {taken[0]} is set by the session (or stops it from "
            "working); remove it"
        )
    return argument


def sbatch_arguments(value: Any, where: str) -> list[str]:
    """extra_args: options, each value after its option (`--gres`, `gpu:1`). A word that
    follows no option would be sbatch's script argument: sbatch would run that file instead
    of the session's job script."""
    arguments = list_of(sbatch_argument, max_items=32)(value, where)
    for index, argument in enumerate(arguments):
        before = arguments[index - 1] if index else ""
        takes_value = (before.startswith("--") and "=" not in before) or len(before) == 2
        if not argument.startswith("-") and (not takes_value or before in SBATCH_FLAGS):
            raise RecipeError(
                f"{where}[{index}]: {shown(argument)} follows no option; sbatch would take it as "
                "the script to run (write options such as --exclusive or --gres=gpu:1)"
            )
    return arguments


sbatch_arguments.item = sbatch_argument
RESOURCES = mapping(
    {
        "partition": matching(SLURM_NAMES, "a partition name (several: comma-separated)"),
        "account": matching(SLURM_NAME, "an account name"),
        "qos": matching(SLURM_NAMES, "a QoS name"),
        "time": slurm_time,
        "nodes": node_count,
        "ntasks": integer_in(1, 1_000_000),
        "ntasks_per_node": integer_in(1, 4096),
        "cpus_per_task": integer_in(1, 4096),
        "mem": memory,
        "gres": matching(
            rf"{GRES_ITEM}(?:,{GRES_ITEM}){{0,15}}", "a GRES such as gpu:1 or gpu:a100:2"
        ),
        # sbatch --gpus=[type:]count (issue 11, GPU services)
        "gpus": matching(rf"{GPUS_ITEM}(?:,{GPUS_ITEM}){{0,15}}", "GPUs such as 1 or a100:2"),
        "constraint": matching(
            r"[A-Za-z0-9_.&|,*\[\]:()!-]{1,256}", "node features such as intel&ib"
        ),
        "nodelist": matching(HOSTLIST, "a host list such as node[1-3],gpu01", 1024),
        "exclude": matching(HOSTLIST, "a host list such as node[1-3],gpu01", 1024),
        "extra_args": sbatch_arguments,
    }
)


def resources_of(body: dict) -> dict:
    """sbatch options of a checked `resources:`; ntasks_per_node has no option of its own."""
    resources = dict(body.get("resources", {}))
    if "ntasks_per_node" in resources:
        extra = list(resources.get("extra_args", []))
        extra.append(f"--ntasks-per-node={resources.pop('ntasks_per_node')}")
        resources["extra_args"] = extra
    return resources


# --- environment ------------------------------------------------------------------------------

# Variables that make a shell or the dynamic linker run other code when a program starts. A
# recipe names the programs a job runs (install.binary, an image); these would run code it
# does not name, so a recipe may not set them.
CODE_AT_START = (
    "LD_PRELOAD",
    "LD_AUDIT",
    "BASH_ENV",
    "ENV",
    "PROMPT_COMMAND",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
)


def environment(value: Any, where: str) -> dict[str, str]:
    variables = string_map(value, where)
    for name in variables:
        if name in CODE_AT_START:
            raise RecipeError(
                f"{where}.{name}: makes programs run other code when they start; a recipe may "
                "not set it"
            )
    return variables


# --- programs: how a role's program is provided, and the seed-era keys that ask for commands -

# A program path: no shell syntax beyond the environment variables that path fields expand.
PROGRAM = r"[A-Za-z0-9_./~+@:%-]*(?:\$\{?[A-Za-z_][A-Za-z0-9_]*\}?[A-Za-z0-9_./~+@:%-]*)*"
program_path = matching(PROGRAM, "a program (a path such as $HOME/bin/ollama, no arguments)", 4096)
command_list = list_of(text_of(4096), max_items=100)
CONTAINER = mapping(
    {
        "docker_source": text,
        "image_path": text,
        "args": list_of(text, max_items=64),
        "build_commands": command_list,
    }
)
INSTALL_METHODS = ("binary", "download", "apptainer", "module")
INSTALL_FIELDS: dict[str, Checker] = {
    "binary": program_path,
    "url": matching(r"(?:https?|file)://\S{1,2040}", "an http(s):// or file:// URL", 2048),
    "sha256": matching(r"(?:sha256:)?[0-9A-Fa-f]{64}", "a SHA-256 checksum (64 hex digits)"),
    "module": matching(
        r"[A-Za-z0-9_.+/@-]{1,256}", "an environment module such as prometheus/2.53"
    ),
    "image": text,
    "version": matching(r"[A-Za-z0-9_.+-]{1,64}", "a version such as 2.53.0"),
    "gpu": boolean,
}


def install_schema(methods: tuple[str, ...], keys: tuple[str, ...]) -> Checker:
    return mapping({"method": one_of(*methods), **{key: INSTALL_FIELDS[key] for key in keys}})


INSTALL = install_schema(INSTALL_METHODS, tuple(INSTALL_FIELDS))


def install_settings(body: dict) -> dict:
    """How a program is provided: the current `install:`, or seed-era container/command."""
    install = dict(body.get("install", {}))
    image = body.get("container", {}).get("image_path")
    if not install and image:
        install = {"method": "apptainer", "image": image}
    if not install and body.get("command"):
        install = {"method": "binary", "binary": body["command"]}
    return install


# Seed-era keys that ask for commands. None is ever run; each one given gets this note.
NOT_RUN = {
    "build_commands": (
        "not run; hpcansible runs no command from a recipe: install what they install "
        "beforehand (for the client: in its Python environment)"
    ),
    "script": "not run; the project's own client (python -m hpcansible bench) runs in the job",
    "docker_source": (
        "not pulled; build the Apptainer image once on the login node (apptainer pull) and set "
        "container.image_path"
    ),
}


def not_run_notes(recipe: dict, where: str) -> list[str]:
    """One note for each key of NOT_RUN a recipe gives, at its top level or in `container`."""
    notes = []
    for place, keys in (("", recipe), ("container.", recipe.get("container", {}))):
        for key in NOT_RUN:
            if keys.get(key):
                count = len(keys[key]) if isinstance(keys[key], list) else 1
                given = f" ({count} commands)" if key == "build_commands" and count > 1 else ""
                notes.append(f"{where}.{place}{key}{given}: {NOT_RUN[key]}")
    return notes
