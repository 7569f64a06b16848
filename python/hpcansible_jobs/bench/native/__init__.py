"""Native engines: the field's own load tools, run by the client job (issue 10).

Where a C tool is what a field measures with, the client runs it instead of the Python
engine and turns its output into the same outputs: summary.json (the same schema, plus
`engine` and `native`), aggregate.json, timeseries.csv, hdr/*.hgrm, per-step results of a
sweep (bench/sweep.py) and live Prometheus metrics (bench/live.py's names where they fit).

| API      | tool            | what it measures                                        |
|----------|-----------------|---------------------------------------------------------|
| redis    | redis-benchmark | requests/s and latency per test (ping, set, get, ...)   |
| http     | wrk             | requests/s, latency distribution, socket/status errors  |
| postgres | pgbench         | transactions/s and per-transaction latency (its log)    |
| mysql    | sysbench        | transactions/s, queries/s, latency histogram (OLTP)     |

`engine` (config option): `native` runs the tool, `python` the Python engine, `auto` the
tool where the API has no Python engine (postgres, mysql) or where the options ask for what
only the tool does (tests, pipeline, value_sizes: the seed's redis-benchmark recipes), else
the Python engine (open loops, per-request records, SLOs, LLM APIs, Chroma). The choice does
not depend on what is installed where the recipe is checked; a missing tool is one line at
run time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hpcansible_jobs.errors import UserError

# The API's tool, by module name under hpcansible_jobs.bench.native.
NATIVE_TOOLS = {
    "redis": "redis_benchmark",
    "http": "wrk",
    "postgres": "pgbench",
    "mysql": "sysbench",
}
# APIs that only a native tool serves here.
NATIVE_ONLY_APIS = ("postgres", "mysql")
# Options only a native tool takes; any of them given with engine auto picks the tool.
NATIVE_ONLY_OPTIONS = (
    "tests",
    "pipeline",
    "value_sizes",
    "threads",
    "scale",
    "tables",
    "table_size",
    "report_interval",
)
# Options that ask for what a native tool does not do, with the reason (every tool refuses
# them; a tool's own UNSUPPORTED adds its own).
COMMON_UNSUPPORTED = {
    "rate": "the native tools run a closed loop; an open loop needs engine: python",
    "arrivals": "the native tools run a closed loop; an open loop needs engine: python",
    "burstiness": "the native tools run a closed loop; an open loop needs engine: python",
    "ramp": "the native tools start every connection at once",
    "warmup_requests": "the native tools have no warm-up; run a short point first instead",
    "warmup": "the native tools have no warm-up; run a short point first instead",
    "workers": "use threads (the tool's own threads) instead",
    "connections": "the tool opens one connection per client (concurrency)",
    "slo": "goodput needs per-request latencies, which the native tools do not give",
    "max_error_rate": "the native tools do not stop on an error rate",
    "prompts": "only the LLM APIs send prompts",
}
NativeCheck = Callable[[Mapping[str, Any], Callable[[str], str]], None]


def asks_native(values: Mapping[str, Any]) -> bool:
    """Whether given options (None means not given) name one only a native tool takes."""
    return any(values.get(name) is not None for name in NATIVE_ONLY_OPTIONS)


def engine_for(api: str | None, engine: str, values: Mapping[str, Any]) -> str:
    """`native` or `python`: what runs for this API, engine setting and given options."""
    if engine != "auto":
        return engine
    if api in NATIVE_ONLY_APIS or (api == "redis" and asks_native(values)):
        return "native"
    return "python"


def tool_module(api: str) -> Any:
    """The module of the API's native tool."""
    import importlib

    return importlib.import_module(f"hpcansible_jobs.bench.native.{NATIVE_TOOLS[api]}")


def check_options(parsed: Mapping[str, Any], place: Callable[[str], str], api: str | None) -> None:
    """The rules of the native engines, for build_config and check_parameters (config.py):
    which engine may serve the API, and (for the tool) which options it cannot honour."""
    engine = parsed.get("engine", "auto")
    if api is None:
        return  # the recipe leaves the API to the service: checked again once it is known
    chosen = engine_for(api, engine, parsed)
    if chosen == "python":
        if api in NATIVE_ONLY_APIS:
            raise UserError(
                f"{place('engine')}: {engine}: there is no Python engine for {api}; "
                f"{tool_module(api).PROGRAM} sends its load (engine: native or auto)"
            )
        for name in NATIVE_ONLY_OPTIONS:
            if parsed.get(name) is not None:
                raise UserError(
                    f"{place(name)}: only a native engine takes it "
                    f"(engine: {engine} runs the Python engine here)"
                )
        return
    if api not in NATIVE_TOOLS:
        raise UserError(f"{place('engine')}: native: there is no native tool for {api}")
    tool = tool_module(api)
    unsupported = {**COMMON_UNSUPPORTED, **tool.UNSUPPORTED}
    for name in parsed:
        if name in unsupported and parsed[name] is not None:
            raise UserError(f"{place(name)}: not with {tool.PROGRAM}: {unsupported[name]}")
    tool.check(parsed, place)


def resolve_engine(config: Any) -> str:
    """`native` or `python` for a BenchConfig (its native-only options at their defaults
    count as not given)."""
    given = {
        "tests": config.tests,
        "value_sizes": config.value_sizes or None,
        "pipeline": None if tuple(config.pipeline) == (1,) else config.pipeline,
        "threads": config.threads,
    }
    return engine_for(config.api, config.engine, given)


def run_native(config: Any) -> int:
    """Run the benchmark with the API's native tool (see bench/native/run.py)."""
    from hpcansible_jobs.bench.native.run import run_native_benchmark

    return run_native_benchmark(config)
