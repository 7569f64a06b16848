"""Benchmark options: one table drives both the command line and the YAML config file.

The command line (`--rate 10`) and a config file (`rate: 10`) go through the same
`build_config` call, so the benchmark_client role and a user at a shell get identical
validation. Every error is one line naming the option (`--rate`) or the file and key
(`client.yml: rate`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from hpcansible_jobs.bench.prompts import prompts_path
from hpcansible_jobs.errors import UserError

APIS = ("ollama", "openai", "http", "redis", "postgres", "mysql", "chroma")
LLM_APIS = ("ollama", "openai")
# --- native engines (issue 10): the field's own load tools ------------------------------
# `engine` picks who sends the load: the Python engine, or the API's native tool
# (bench/native: redis-benchmark, wrk, pgbench, sysbench). Postgres and MySQL have only the
# tool. ENDPOINT_SCHEMES: the URL schemes each API takes (http(s) for the others).
ENGINES = ("auto", "native", "python")
ENDPOINT_SCHEMES = {
    "redis": ("redis", "rediss"),
    "postgres": ("postgres", "postgresql"),
    "mysql": ("mysql",),
}
# --- end native engines ---------------------------------------------------------------
ARRIVALS = ("constant", "poisson", "gamma")
SLO_KEYS = ("ttft_ms", "tpot_ms", "e2e_ms", "e2e_intended_ms")
# Options that take a comma list (or a YAML list): each one is an axis of a sweep.
SWEEP_AXES = ("concurrency", "rate", "input_tokens", "output_tokens", "pipeline", "value_sizes")
# A mode names one axis (redis-benchmark's value sizes sweep on the axis value_size).
SWEEP_MODES = ("product", "zip", *SWEEP_AXES[:-1], "value_size")
# Options that the session sets itself; a recipe's parameters may not hold them.
SESSION_OPTIONS = ("endpoint", "api", "output", "session_id", "metrics_port")
# Per-request timeout when none is given: LLM answers can take minutes, key-value calls not.
DEFAULT_TIMEOUT_S = {
    "ollama": 600.0,
    "openai": 600.0,
    "http": 30.0,
    "redis": 30.0,
    "postgres": 30.0,
    "mysql": 30.0,
    "chroma": 30.0,
}
DEFAULT_REQUESTS = 100
# Open loop: in-flight cap (and connector size) when --connections is not given. Large on
# purpose, so that the client itself does not hold requests back (coordinated omission).
DEFAULT_OPEN_LOOP_CONNECTIONS = 1024


@dataclass(frozen=True)
class Option:
    """One option: its YAML key is `name`, its flag is `--name-with-dashes`."""

    name: str
    kind: str  # str, int, float, bool, choice, int_list, float_list, slo, headers, json_object
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    group: str = "general"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


OPTIONS: tuple[Option, ...] = (
    Option("endpoint", "str", None, "service URL: http://host:port, or redis://[:pw@]host:port"),
    Option("api", "choice", None, "protocol to speak", choices=APIS),
    Option("output", "str", None, "directory for summary.json, requests.jsonl, timeseries.csv"),
    Option("model", "str", None, "model name sent to the LLM server (required for ollama)"),
    Option("session_id", "str", None, "label on live metrics (default $HPCANSIBLE_SESSION_ID)"),
    Option("concurrency", "int_list", None, "closed loop: streams in flight; '1,2,4' sweeps"),
    Option("rate", "float_list", None, "open loop: requests/s from a schedule; '5,10' sweeps"),
    Option(
        "sweep",
        "choice",
        "product",
        "with several lists: every combination, the lists side by side, or one axis only",
        choices=SWEEP_MODES,
    ),
    Option("arrivals", "choice", "poisson", "open-loop arrival process", choices=ARRIVALS),
    Option("burstiness", "float", 1.0, "gamma shape: <1 burstier, 1 = Poisson", minimum=1e-3),
    Option("requests", "int", None, f"requests to send (default {DEFAULT_REQUESTS})", minimum=1),
    Option("duration", "float", None, "seconds to send for", minimum=0.001),
    Option("warmup_requests", "int", 0, "first N requests are excluded", minimum=0),
    Option("warmup", "float", 0.0, "requests sent in the first S seconds are excluded", minimum=0),
    Option("ramp", "float", 0.0, "seconds to ramp rate or concurrency up linearly", minimum=0),
    Option("timeout", "float", None, "per-request timeout in seconds", minimum=0.001),
    Option(
        "max_error_rate",
        "float",
        None,
        "stop early above this failed fraction",
        minimum=0,
        maximum=1,
    ),
    Option("connections", "int", None, "connection pool size and in-flight cap", minimum=1),
    Option("workers", "int", 1, "client processes that split the load", minimum=1, maximum=256),
    Option("seed", "int", 0, "seed for arrivals, prompts and keys"),
    Option(
        "late_ms", "float", 10.0, "a send later than this after its schedule is late", minimum=0
    ),
    Option("records", "choice", "jsonl", "per-request records format", ("jsonl", "csv", "none")),
    Option("slo", "slo", None, "e.g. ttft_ms:500,tpot_ms:50 adds goodput and attainment"),
    Option(
        "slo_attainment",
        "float",
        0.9,
        "share of requests that must meet the SLO for a load to count as meeting it",
        minimum=0.001,
        maximum=1,
    ),
    Option(
        "metrics_port",
        "int",
        None,
        "serve live Prometheus metrics on this port",
        minimum=0,
        maximum=65535,
    ),
    Option("metrics_host", "str", "0.0.0.0", "address for --metrics-port"),
    Option("quiet", "bool", False, "no progress bar and no table"),
    Option(
        "wait_for_service",
        "float",
        0.0,
        "seconds to wait for the endpoint to accept connections",
        minimum=0,
    ),
    Option("linger", "float", 0.0, "seconds the live metrics stay up after the run", minimum=0),
    Option("gate_file", "str", None, "wait until this file exists before the measured load"),
    Option(
        "gate_timeout",
        "float",
        180.0,
        "seconds to wait for --gate-file before starting anyway",
        minimum=0,
    ),
    # LLM APIs
    Option(
        "ollama_endpoint", "choice", "generate", "Ollama API", ("generate", "chat"), group="llm"
    ),
    Option("openai_endpoint", "choice", "chat", "OpenAI API", ("chat", "completions"), group="llm"),
    Option("path", "str", None, "request path, overriding the API's default", group="llm"),
    Option(
        "input_tokens", "int_list", 128, "synthetic prompt length; '50,100' sweeps", group="llm"
    ),
    Option("output_tokens", "int_list", 128, "tokens asked for; '16,64' sweeps", group="llm"),
    Option(
        "prompts",
        "str",
        None,
        "JSONL file of prompts, or a built-in set (default) instead of synthetic",
        group="llm",
    ),
    Option(
        "ignore_eos", "bool", False, "fixed output length: ignore_eos + min_tokens", group="llm"
    ),
    Option("extra_body", "json_object", None, "JSON object merged into each body", group="llm"),
    # plain HTTP
    Option("method", "str", None, "HTTP method (default GET, POST with --body)", group="http"),
    Option("body", "str", None, "request body, or @FILE", group="http"),
    Option("headers", "headers", None, "'Name: value', repeatable", group="http"),
    Option(
        "expect_status",
        "int",
        200,
        "status counted as success",
        minimum=100,
        maximum=599,
        group="http",
    ),
    # Redis
    Option("redis_command", "choice", "get", "command mix", ("get", "set", "mixed"), group="redis"),
    Option(
        "redis_set_ratio", "float", 0.1, "SET share with mixed", minimum=0, maximum=1, group="redis"
    ),
    Option("key_size", "int", 16, "key length in bytes", minimum=1, maximum=1024, group="redis"),
    Option(
        "value_size", "int", 64, "value length in bytes", minimum=1, maximum=64 << 20, group="redis"
    ),
    Option("keyspace", "int", 10000, "distinct keys", minimum=1, maximum=10_000_000, group="redis"),
    Option("redis_prefill", "bool", True, "SET every key before a get/mixed run", group="redis"),
    Option("password", "str", None, "service password or token (or in the URL)", group="redis"),
    # --- native engines (issue 10) ------------------------------------------------------
    Option(
        "engine",
        "choice",
        "auto",
        "who sends the load: the API's native tool (redis-benchmark, wrk, pgbench, sysbench) "
        "or the Python engine; auto: the tool for postgres/mysql and for redis with a "
        "native-only option (tests, pipeline, value_sizes), else python",
        choices=ENGINES,
        group="native",
    ),
    Option(
        "tests",
        "str",
        None,
        "the tool's tests: redis-benchmark -t (ping,set,get), a pgbench built-in script "
        "(tpcb-like), a sysbench test (oltp_read_write)",
        group="native",
    ),
    Option("pipeline", "int_list", 1, "redis-benchmark -P; '1,16' sweeps", group="native"),
    Option(
        "value_sizes", "int_list", None, "value sizes to sweep (redis-benchmark -d)", group="native"
    ),
    Option(
        "threads",
        "int",
        None,
        "tool threads (wrk -t, pgbench -j, redis-benchmark --threads)",
        minimum=1,
        maximum=1024,
        group="native",
    ),
    Option("scale", "int", 1, "pgbench -i scale factor", minimum=1, group="native"),
    Option("tables", "int", 1, "sysbench --tables", minimum=1, maximum=1000, group="native"),
    Option("table_size", "int", 10000, "sysbench --table-size", minimum=1, group="native"),
    Option("database", "str", None, "database name (default bench)", group="native"),
    Option("user", "str", None, "database user (default bench)", group="native"),
    Option(
        "report_interval",
        "float",
        1.0,
        "seconds between the tool's progress lines",
        minimum=1,
        maximum=60,
        group="native",
    ),
    # Chroma (Python engine)
    Option(
        "dimensions", "int", 128, "embedding dimensions", minimum=1, maximum=65536, group="chroma"
    ),
    Option("top_k", "int", 10, "results per query", minimum=1, maximum=10000, group="chroma"),
    Option(
        "chroma_command",
        "choice",
        "query",
        "query, add or a mix",
        ("query", "add", "mixed"),
        group="chroma",
    ),
    Option(
        "chroma_add_ratio",
        "float",
        0.1,
        "add share with mixed",
        minimum=0,
        maximum=1,
        group="chroma",
    ),
    # --- end native engines -------------------------------------------------------------
)
OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}


@dataclass(frozen=True)
class BenchConfig:
    """A validated benchmark. The sweep axes (SWEEP_AXES) hold several values only before
    sweep.plan_points splits the config into one config per point; a point's config has
    one value on each axis (`rate` is empty in a closed loop)."""

    endpoint: str
    api: str
    output: Path
    model: str | None = None
    session_id: str = "local"
    concurrency: tuple[int, ...] = (1,)
    rate: tuple[float, ...] = ()
    sweep: str = "product"
    arrivals: str = "poisson"
    burstiness: float = 1.0
    requests: int | None = None
    duration: float | None = None
    warmup_requests: int = 0
    warmup: float = 0.0
    ramp: float = 0.0
    timeout: float = 30.0
    max_error_rate: float | None = None
    connections: int | None = None
    workers: int = 1
    seed: int = 0
    late_ms: float = 10.0
    records: str = "jsonl"
    slo: dict[str, float] = field(default_factory=dict)
    slo_attainment: float = 0.9
    metrics_port: int | None = None
    metrics_host: str = "0.0.0.0"
    quiet: bool = False
    wait_for_service: float = 0.0
    linger: float = 0.0
    gate_file: str | None = None
    gate_timeout: float = 180.0
    ollama_endpoint: str = "generate"
    openai_endpoint: str = "chat"
    path: str | None = None
    input_tokens: tuple[int, ...] = (128,)
    output_tokens: tuple[int, ...] = (128,)
    prompts: str | None = None
    ignore_eos: bool = False
    extra_body: dict[str, Any] | None = None
    method: str = "GET"
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    expect_status: int = 200
    redis_command: str = "get"
    redis_set_ratio: float = 0.1
    key_size: int = 16
    value_size: int = 64
    keyspace: int = 10000
    redis_prefill: bool = True
    password: str | None = None
    # native engines (issue 10)
    engine: str = "auto"
    tests: str | None = None
    pipeline: tuple[int, ...] = (1,)
    value_sizes: tuple[int, ...] = ()
    threads: int | None = None
    scale: int = 1
    tables: int = 1
    table_size: int = 10000
    database: str | None = None
    user: str | None = None
    report_interval: float = 1.0
    dimensions: int = 128
    top_k: int = 10
    chroma_command: str = "query"
    chroma_add_ratio: float = 0.1
    # Not an option: the sweep point this config runs (the live metrics' `step` label).
    step: str = "run"

    @property
    def open_loop(self) -> bool:
        return bool(self.rate)

    @property
    def load_axis(self) -> str:
        """The option that sets the load: rate (open loop) or concurrency (closed loop)."""
        return "rate" if self.open_loop else "concurrency"

    def axis_values(self) -> dict[str, tuple[float, ...]]:
        """Every sweep axis that applies to this config and its values (the load axis
        first; token axes only for LLM APIs, input_tokens only for synthetic prompts)."""
        axes: dict[str, tuple[float, ...]] = {self.load_axis: getattr(self, self.load_axis)}
        if self.api in LLM_APIS:
            if not self.prompts:
                axes["input_tokens"] = self.input_tokens
            axes["output_tokens"] = self.output_tokens
        if self.engine == "native" and self.api == "redis":  # redis-benchmark's own axes
            axes["value_size"] = self.value_sizes or (self.value_size,)
            axes["pipeline"] = self.pipeline
        return axes

    def with_values(self, values: Mapping[str, float], step: str) -> BenchConfig:
        """This config with one value on each axis in `values` (a sweep point)."""
        changes: dict[str, Any] = {
            axis: (int(value) if axis != "rate" else float(value),)
            for axis, value in values.items()
        }
        if "value_size" in changes:  # one value: value_size, not the value_sizes list
            changes["value_sizes"] = changes.pop("value_size")
            changes["value_size"] = changes["value_sizes"][0]
        return replace(self, **changes, step=step)

    def with_output(self, output: Path) -> BenchConfig:
        return replace(self, output=output)

    @property
    def max_in_flight(self) -> int:
        """Connector size, and the open loop's cap on requests in flight."""
        if self.connections is not None:
            return self.connections
        return DEFAULT_OPEN_LOOP_CONNECTIONS if self.open_loop else max(self.concurrency)

    def to_mapping(self, mask_secrets: bool = True) -> dict[str, Any]:
        """Plain JSON-able values (for worker processes with mask_secrets=False)."""
        data = asdict(self)
        data["output"] = str(self.output)
        for axis in SWEEP_AXES:
            data[axis] = list(getattr(self, axis))
        data["body"] = None if self.body is None else self.body.decode("utf-8", "replace")
        if mask_secrets and data.get("password"):
            data["password"] = "***"
        return data


def from_mapping_unchecked(data: Mapping[str, Any]) -> BenchConfig:
    """Rebuild a config from `to_mapping` output inside a worker process (already valid)."""
    values = dict(data)
    values["output"] = Path(values["output"])
    for axis in SWEEP_AXES:
        values[axis] = tuple(values[axis])
    if values.get("body") is not None:
        values["body"] = values["body"].encode()
    known = {f.name for f in fields(BenchConfig)}
    return BenchConfig(**{k: v for k, v in values.items() if k in known})


# --- parsing single values ---------------------------------------------------------------


def _fail(where: str, message: str) -> UserError:
    return UserError(f"{where}: {message}")


def _to_int(raw: Any) -> int:
    """int() that refuses to truncate: 2.5 and '2.5' are errors, 2.0 and '2' are 2."""
    if isinstance(raw, float):
        if not raw.is_integer():
            raise ValueError(raw)
        return int(raw)
    return int(str(raw).strip()) if isinstance(raw, str) else int(raw)


def _parse_number(raw: Any, convert: Callable[[Any], Any], where: str, what: str) -> Any:
    if isinstance(raw, bool):
        raise _fail(where, f"expected {what}, got {raw!r}")
    try:
        return convert(raw)
    except (TypeError, ValueError):
        hint = ""
        if isinstance(raw, list | tuple) or (isinstance(raw, str) and "," in raw):
            hint = f" (only {', '.join(SWEEP_AXES)} take a list)"
        raise _fail(where, f"expected {what}, got {raw!r}{hint}") from None


def _check_range(option: Option, value: float, where: str) -> None:
    if option.minimum is not None and value < option.minimum:
        raise _fail(where, f"must be at least {option.minimum:g}, got {value:g}")
    if option.maximum is not None and value > option.maximum:
        raise _fail(where, f"must be at most {option.maximum:g}, got {value:g}")


def _parse_list(raw: Any, convert: Callable[[Any], Any], where: str, what: str) -> tuple:
    """One number or a sweep: '1,2,4', [1, 2, 4] or 4; a bad item is named with the list."""
    items = raw.split(",") if isinstance(raw, str) else raw
    if isinstance(items, int | float) and not isinstance(items, bool):
        items = [items]
    if not isinstance(items, list | tuple) or not items:
        raise _fail(where, f"expected {what} or a comma-separated list, got {raw!r}")
    values = []
    for item in items:
        try:
            if isinstance(item, bool):
                raise ValueError(item)
            values.append(convert(item))
        except (TypeError, ValueError):
            whole = f" in {raw!r}" if len(items) > 1 else ""
            raise _fail(
                where, f"expected {what} or a comma-separated list, got {item!r}{whole}"
            ) from None
    return tuple(values)


def _parse_bool(raw: Any, where: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise _fail(where, f"expected true or false, got {raw!r}")


def parse_slo(raw: Any, where: str) -> dict[str, float]:
    """`ttft_ms:500,tpot_ms:50` or a mapping; keys from SLO_KEYS, values in milliseconds."""
    if isinstance(raw, str):
        pairs: list[tuple[str, Any]] = []
        for part in filter(None, (p.strip() for p in raw.split(","))):
            key, sep, value = part.partition(":")
            if not sep:
                raise _fail(where, f"expected KEY:MILLISECONDS, got {part!r}")
            pairs.append((key.strip(), value.strip()))
    elif isinstance(raw, Mapping):
        pairs = list(raw.items())
    else:
        raise _fail(where, f"expected e.g. ttft_ms:500,tpot_ms:50, got {raw!r}")
    slo: dict[str, float] = {}
    for key, value in pairs:
        if key not in SLO_KEYS:
            raise _fail(where, f"unknown SLO {key!r} (known: {', '.join(SLO_KEYS)})")
        number = _parse_number(value, float, where, f"milliseconds for {key}")
        if number <= 0:
            raise _fail(where, f"{key} must be positive, got {number:g}")
        slo[key] = number
    return slo


def _parse_headers(raw: Any, where: str) -> dict[str, str]:
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple):
        raise _fail(where, f"expected 'Name: value' entries, got {raw!r}")
    headers: dict[str, str] = {}
    for item in items:
        name, sep, value = str(item).partition(":")
        if not sep or not name.strip():
            raise _fail(where, f"expected 'Name: value', got {item!r}")
        headers[name.strip()] = value.strip()
    return headers


def _parse_json_object(raw: Any, where: str) -> dict[str, Any]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as error:
            raise _fail(where, f"invalid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(raw, Mapping):
        raise _fail(where, f"expected a JSON object, got {raw!r}")
    return dict(raw)


def parse_value(option: Option, raw: Any, where: str) -> Any:
    """Convert one raw value (a CLI string or a YAML scalar/list/mapping) for `option`."""
    kind = option.kind
    if kind == "str":
        if isinstance(raw, Mapping | list):
            raise _fail(where, f"expected a string, got {raw!r}")
        return str(raw)
    if kind == "choice":
        if str(raw) not in option.choices:
            raise _fail(where, f"expected one of {', '.join(option.choices)}, got {raw!r}")
        return str(raw)
    if kind == "bool":
        return _parse_bool(raw, where)
    if kind in ("int", "float"):
        convert = _to_int if kind == "int" else float
        value = _parse_number(raw, convert, where, "an integer" if kind == "int" else "a number")
        _check_range(option, value, where)
        return value
    if kind in ("int_list", "float_list"):
        convert = _to_int if kind == "int_list" else float
        what = "an integer" if kind == "int_list" else "a number"
        values = _parse_list(raw, convert, where, what)
        for value in values:
            _check_range(option, value, where)
            if value <= 0:
                raise _fail(where, f"must be positive, got {value:g}")
        return values
    if kind == "slo":
        return parse_slo(raw, where)
    if kind == "headers":
        return _parse_headers(raw, where)
    if kind == "json_object":
        return _parse_json_object(raw, where)
    raise AssertionError(f"unknown option kind {kind}")


# --- whole configurations ----------------------------------------------------------------


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML config file into a mapping keyed by option name."""
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise UserError(f"{file}: cannot read config file ({error.strerror})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise UserError(
            f"{file}:{line} invalid YAML ({getattr(error, 'problem', error)})"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise UserError(f"{file}: expected a mapping of option names to values")
    # The role may nest options under `bench:`; accept both layouts.
    if set(data) == {"bench"} and isinstance(data["bench"], Mapping):
        data = data["bench"]
    return dict(data)


def _parse_all(values: Mapping[str, Any], place: Callable[[str], str]) -> dict[str, Any]:
    """Every given value through its option's parser (None means not given)."""
    unknown = sorted(set(values) - set(OPTIONS_BY_NAME))
    if unknown:
        raise UserError(f"{place(unknown[0])}: unknown option (see --help for the list)")
    return {
        name: parse_value(OPTIONS_BY_NAME[name], raw, place(name))
        for name, raw in values.items()
        if raw is not None
    }


def _check_combination(
    parsed: Mapping[str, Any], place: Callable[[str], str], api: str | None
) -> int | None:
    """The rules between options (each written once, for build_config and
    check_parameters); returns the request count (default when neither bound is given)."""
    if "rate" in parsed and "concurrency" in parsed:
        raise UserError(
            f"{place('rate')}: give --rate (open loop) or --concurrency (closed loop), not both"
        )
    arrivals = parsed.get("arrivals", "poisson")
    if parsed.get("burstiness", 1.0) != 1.0 and arrivals != "gamma":
        raise UserError(f"{place('burstiness')}: applies only to --arrivals gamma")
    if api == "ollama" and not parsed.get("model"):
        raise UserError(f"{place('model')}: required for --api ollama")
    requests = parsed.get("requests")
    if requests is None and parsed.get("duration") is None:
        requests = DEFAULT_REQUESTS
    if requests is not None and parsed.get("warmup_requests", 0) >= requests:
        raise UserError(f"{place('warmup_requests')}: must be smaller than requests ({requests})")
    if parsed.get("duration") is not None and parsed.get("warmup", 0.0) >= parsed["duration"]:
        raise UserError(f"{place('warmup')}: must be shorter than duration")
    concurrency = parsed.get("concurrency", (1,))
    workers = parsed.get("workers", 1)
    if "rate" not in parsed and workers > min(concurrency):
        raise UserError(f"{place('workers')}: more workers than concurrent streams")
    if requests is not None and workers > requests:
        raise UserError(f"{place('workers')}: more workers than requests")
    key_size = parsed.get("key_size", 16)
    keyspace = parsed.get("keyspace", 10000)
    if api == "redis" and key_size < len(str(keyspace - 1)) + 1:
        raise UserError(f"{place('key_size')}: too short for keyspace {keyspace}")
    _check_sweep(parsed, place)
    if parsed.get("prompts"):
        prompts_path(parsed["prompts"], place("prompts"))
    from hpcansible_jobs.bench.native import check_options  # native engines (issue 10)

    check_options(parsed, place, api)
    return requests


def _check_sweep(parsed: Mapping[str, Any], place: Callable[[str], str]) -> None:
    mode = parsed.get("sweep", "product")
    load_axis = "rate" if "rate" in parsed else "concurrency"
    if mode in ("concurrency", "rate") and mode != load_axis:
        loop = "an open loop (rate)" if load_axis == "rate" else "a closed loop (concurrency)"
        raise UserError(f"{place('sweep')}: {mode}: the run is {loop}")
    if len(parsed.get("input_tokens", ())) > 1 and parsed.get("prompts"):
        raise UserError(
            f"{place('input_tokens')}: a list sweeps the length of synthetic prompts; "
            "it cannot go with prompts"
        )
    lists = {axis: parsed[axis] for axis in SWEEP_AXES if len(parsed.get(axis, ())) > 1}
    if mode == "zip":
        lengths = {axis: len(values) for axis, values in lists.items()}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{axis} has {n}" for axis, n in lengths.items())
            raise UserError(f"{place('sweep')}: zip needs lists of one length ({listed})")
        combos = list(zip(*lists.values(), strict=True))
        if len(set(combos)) < len(combos):
            raise UserError(f"{place('sweep')}: zip gives the same point twice")
        return
    for axis, values in lists.items():
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise UserError(f"{place(axis)}: {twice[0]:g} is listed twice")


def build_config(
    values: Mapping[str, Any], where: Mapping[str, str] | None = None, source: str | None = None
) -> BenchConfig:
    """Validate raw option values into a BenchConfig.

    `where` maps an option name to how the user wrote it (`--rate` or `client.yml: rate`),
    so that errors point at the right place; other options are named `source: name` when
    a config file is the source, else by their flag.
    """
    where = dict(where or {})

    def place(name: str) -> str:
        if name in where:
            return where[name]
        if source:
            return f"{source}: {name}"
        option = OPTIONS_BY_NAME.get(name)
        return option.flag if option else name

    parsed = _parse_all(values, place)
    for name in ("endpoint", "api", "output"):
        if not parsed.get(name):
            raise UserError(f"{place(name)}: required (give {OPTIONS_BY_NAME[name].flag})")
    api = parsed["api"]
    _check_endpoint(api, parsed["endpoint"], place("endpoint"))
    requests = _check_combination(parsed, place, api)
    if parsed.get("prompts"):
        prompts = prompts_path(parsed["prompts"], place("prompts"))
        if not prompts.is_file():
            raise UserError(f"{place('prompts')}: no such file {prompts}")

    body = parsed.get("body")
    body_bytes = _read_body(body, place("body")) if body is not None else None
    method = parsed.get("method") or ("POST" if body_bytes is not None else "GET")

    session_id = parsed.get("session_id") or os.environ.get("HPCANSIBLE_SESSION_ID") or "local"
    output = Path(os.path.expandvars(parsed["output"])).expanduser()
    derived = ("output", "body", "method", "session_id", "requests", "timeout", "slo", "headers")
    settings = {name: value for name, value in parsed.items() if name not in derived}
    return BenchConfig(
        **settings,
        output=output,
        body=body_bytes,
        method=method.upper(),
        session_id=session_id,
        requests=requests,
        timeout=parsed.get("timeout", DEFAULT_TIMEOUT_S[api]),
        slo=parsed.get("slo", {}),
        headers=parsed.get("headers", {}),
    )


def check_parameters(
    parameters: Mapping[str, Any],
    where: str,
    *,
    api: str | None = None,
    keys: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Check a recipe's client parameters (bench option names) without running anything.

    The recipe checker calls this before a session submits a job, so that a wrong type
    (`output_tokens: "50,abc"`) is refused on the user's machine. Errors are one line
    naming `where.key`; `keys` maps an option to the key the recipe wrote (a seed-era
    name such as max_tokens). The options that the session sets (SESSION_OPTIONS) and
    files that only exist on the cluster (prompts, body) are not checked here. Returns
    the values normalized: numbers as numbers, a one-value list as its value, a sweep as
    a list, the SLO as a mapping; build_config accepts every one of them again.
    """
    names = dict(keys or {})

    def place(name: str) -> str:
        return f"{where}.{names.get(name, name)}"

    parsed = _parse_all(parameters, place)
    for name in parsed:
        if name in SESSION_OPTIONS:
            raise UserError(f"{place(name)}: set by the session; remove it from the recipe")
    _check_combination(parsed, place, api)
    normalized: dict[str, Any] = {}
    for name, value in parsed.items():
        if isinstance(value, tuple):
            normalized[name] = value[0] if len(value) == 1 else list(value)
        else:
            normalized[name] = value
    return normalized


def _check_endpoint(api: str, endpoint: str, where: str) -> None:
    parts = urlsplit(endpoint)
    allowed = ENDPOINT_SCHEMES.get(api, ("http", "https"))
    if parts.scheme not in allowed or not parts.hostname:
        example = f"{allowed[0]}://host:port"
        raise UserError(f"{where}: expected a URL like {example}, got {endpoint!r}")
    try:
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        raise UserError(f"{where}: invalid port in {endpoint!r}") from None


def _read_body(body: str, where: str) -> bytes:
    if body.startswith("@"):
        try:
            return Path(body[1:]).read_bytes()
        except OSError as error:
            raise UserError(f"{where}: cannot read {body[1:]} ({error.strerror})") from None
    return body.encode()
