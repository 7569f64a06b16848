"""`python -m hpcansible_jobs.bench ...` (what the client job runs; `python -m hpcansible bench`
is the same from the CLI) and `... merge DIR... --output DIR`.

Every option is also a key of the --config YAML file (underscores instead of dashes);
options given on the command line override the file. Both go through
config.build_config, so the benchmark_client role and a shell user get the same checks.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hpcansible_jobs.bench.config import OPTIONS, OPTIONS_BY_NAME, build_config, load_config_file

DESCRIPTION = """Benchmark a service: closed loop (--concurrency) or open loop (--rate),
recording TTFT, TPOT, ITL, E2E and E2E from the intended send time for every request."""

EPILOG = """outputs in --output DIR: summary.json, aggregate.json (mergeable histograms),
requests.jsonl (or .csv), timeseries.csv (per second), hdr/*.hgrm (percentile tables).

exit codes: 0 done; 1 stopped by --max-error-rate, no request succeeded, or the client
could not start (e.g. Redis refused the password); 2 usage or config error; 130
interrupted (the outputs hold what was measured).

examples:
  python -m hpcansible_jobs.bench --endpoint http://node1:11434 --api ollama --model llama3.2 \\
      --concurrency 1,4,16 --requests 200 --output results/
  python -m hpcansible_jobs.bench --config client.yml --output results/
  python -m hpcansible_jobs.bench --endpoint redis://:secret@node1:6379 --api redis \\
      --rate 5000 --duration 60 --redis-command mixed --output results/
  python -m hpcansible_jobs.bench merge job-*/results --output merged/
"""

GROUP_TITLES = {
    "general": "load and outputs",
    "llm": "LLM APIs (ollama, openai)",
    "http": "plain HTTP (--api http)",
    "redis": "Redis (--api redis)",
    "native": "native engines (redis-benchmark, wrk, pgbench, sysbench)",
    "chroma": "Chroma (--api chroma)",
}


def _add_option(group: argparse._ArgumentGroup, name: str) -> None:
    option = OPTIONS_BY_NAME[name]
    help_text = option.help
    if option.default not in (None, False, 0, 0.0, ""):
        help_text += f" (default {option.default})"
    kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
    if option.kind == "bool":
        kwargs["action"] = argparse.BooleanOptionalAction
    elif option.kind == "headers":
        kwargs["action"] = "append"
        kwargs["metavar"] = "'NAME: VALUE'"
    elif option.kind == "choice":
        kwargs["choices"] = option.choices
    else:
        kwargs["metavar"] = name.upper()
    group.add_argument(option.flag, **kwargs)


def register(subparsers: argparse._SubParsersAction) -> None:
    """`bench` as a subcommand of the CLI (`python -m hpcansible bench`)."""
    add_arguments(
        subparsers.add_parser(
            "bench",
            help="benchmark a service (Ollama, OpenAI-compatible, HTTP, Redis, databases)",
            description=DESCRIPTION,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )


def build_parser() -> argparse.ArgumentParser:
    """The client on its own (`python -m hpcansible_jobs.bench`), as jobs run it."""
    parser = argparse.ArgumentParser(
        prog="python -m hpcansible_jobs.bench",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="YAML file of options (keys as below, with underscores)",
    )
    groups = {key: parser.add_argument_group(title) for key, title in GROUP_TITLES.items()}
    for option in OPTIONS:
        _add_option(groups[option.group], option.name)
    parser.set_defaults(func=run_bench)

    commands = parser.add_subparsers(dest="bench_command", metavar="[merge]")
    merge = commands.add_parser(
        "merge",
        help="merge output directories of several runs (e.g. a job array)",
        description="Merge the aggregate.json of several bench output directories into one "
        "summary: counts add, HdrHistograms add, the window spans all runs.",
    )
    merge.add_argument("directories", nargs="+", type=Path, metavar="DIR")
    merge.add_argument("--output", required=True, type=Path, metavar="DIR")
    merge.add_argument("--quiet", action="store_true", help="no table")
    merge.set_defaults(func=run_merge)


def config_from_args(args: argparse.Namespace) -> Any:
    """Merge --config FILE and command-line options (the latter win) and validate."""
    values: dict[str, Any] = {}
    where: dict[str, str] = {}
    if getattr(args, "config", None):
        for name, value in load_config_file(args.config).items():
            values[name] = value
            where[name] = f"{args.config}: {name}"
    for option in OPTIONS:
        if hasattr(args, option.name):
            values[option.name] = getattr(args, option.name)
            where[option.name] = option.flag
    return build_config(values, where, source=args.config)


def run_bench(args: argparse.Namespace) -> int:
    from hpcansible_jobs.bench.runner import run_benchmark

    return run_benchmark(config_from_args(args))


def run_merge(args: argparse.Namespace) -> int:
    from hpcansible_jobs.bench import report
    from hpcansible_jobs.bench.workers import merge_directories

    summary = merge_directories(list(args.directories), args.output)
    if not args.quiet:
        report.print_summary(summary)
    return 0
