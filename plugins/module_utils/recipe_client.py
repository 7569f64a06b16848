# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""A client recipe's parameters, checked by the benchmark client's own rules, and how long the
load they ask for runs (the pre-submit time-limit check).

The benchmark client (`python -m hpcansible bench`, package hpcansible_jobs.bench) owns its options:
`hpcansible_jobs.bench.config.check_parameters` is the code that also reads them inside the job.
This module is the collection's one import of that package (imported late, on first use).
The client's option table is not copied here: a second copy would drift. Where the package is
missing, checking a client recipe fails with one line that says so; it never checks less in
silence.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_schema import (
    MAX_INTEGER,
    RecipeError,
    key_name,
    seconds_text,
    shown,
    slurm_time_seconds,
)

# Seed-era client parameters and the benchmark client option each one means.
SEED_CLIENT_PARAMETERS = {
    "num_requests": "requests",
    "num_operations": "requests",
    "operations_per_test": "requests",
    "concurrent_requests": "concurrency",
    "prompt_length": "input_tokens",
    "max_tokens": "output_tokens",
    # bench (issue 8): the seed's prompt-length sweep is the client's input_tokens axis
    "prompt_lengths": "input_tokens",
    # issue 10: the seed's redis-benchmark recipes (native engine)
    "clients": "concurrency",
    "client_counts": "concurrency",
    "data_sizes": "value_sizes",
    "pipeline_depths": "pipeline",
    "native_tests": "tests",
}
# Seed-era keys accepted for compatibility but without effect here, with the reason.
SEED_IGNORED = {
    "output_file": "results always go to the session directory",
    "test_persistence": "not measured by this client",
}
# Parameters that become role variables of their own (benchmark_client_<name>).
ROLE_PARAMETERS = ("wait_for_service", "linger")
# Stand-ins for what the session fills in, so that a client's plan can be built on its own.
PLAN_ENDPOINTS = {
    "redis": "redis://localhost:6379",
    "postgres": "postgres://localhost:5432",  # issue 10
    "mysql": "mysql://localhost:3306",
    "default": "http://localhost:8000",
}
# Steps 2 to 5 (the service ready, the client started, Prometheus ready and the client's start
# gate released) take about a minute on the testbed; a job must outlast them and the load.
START_ALLOWANCE_S = 120


def bench_rules(where: str) -> ModuleType:
    """hpcansible_jobs.bench.config, or one line saying that client recipes cannot be checked."""
    try:
        from hpcansible_jobs.bench import config
    except ImportError as error:
        raise RecipeError(
            f"{where}: cannot be checked: the benchmark client's package (hpcansible_jobs.bench) is "
            f"not importable by this Python ({error}); install the checkout (pip install -e .)"
        ) from None
    return config


def _bounded(value: Any, where: str) -> None:
    """Numbers a recipe hands the client are finite and fit 64 bits, at any depth."""
    if isinstance(value, float) and not math.isfinite(value):
        raise RecipeError(f"{where}: {value!r} is not a finite number")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INTEGER:
        raise RecipeError(f"{where}: {shown(value, 24)} is out of range")
    if isinstance(value, list | tuple):
        for item in value:
            _bounded(item, where)
    elif isinstance(value, Mapping):
        for item in value.values():
            _bounded(item, where)


def client_parameters(
    parameters: dict, where: str, api: str | None
) -> tuple[dict[str, Any], list[str]]:
    """Seed-era names mapped to the client's options, every value checked by the client's own
    rules (sweep lists included); returns the normalized options and notes on what is ignored."""
    bench = bench_rules(where)
    options: dict[str, Any] = {}
    written: dict[str, str] = {}  # option -> the key the recipe wrote
    notes = []
    for name, value in parameters.items():
        if not isinstance(name, str) or not name:
            raise RecipeError(f"{where}.{key_name(name)}: unknown benchmark parameter")
        if name in SEED_IGNORED:
            notes.append(f"{where}.{name}: ignored ({SEED_IGNORED[name]})")
            continue
        option = SEED_CLIENT_PARAMETERS.get(name, name)
        if option in bench.SESSION_OPTIONS:
            raise RecipeError(f"{where}.{name}: set by the session; remove it from the recipe")
        if option not in bench.OPTIONS_BY_NAME:
            known = [*bench.OPTIONS_BY_NAME, *SEED_CLIENT_PARAMETERS]
            hint = difflib.get_close_matches(name, known, n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise RecipeError(f"{where}.{key_name(name)}: unknown benchmark parameter{suggestion}")
        if option in written:
            raise RecipeError(
                f"{where}.{name}: means {option}, which {written[option]} already gives"
            )
        options[option], written[option] = value, name
    for option, value in options.items():
        _bounded(value, f"{where}.{written[option]}")
    try:
        checked = bench.check_parameters(options, where, api=api, keys=written)
    except bench.UserError as error:
        raise RecipeError(str(error)) from None
    for option, value in checked.items():
        _bounded(value, f"{where}.{written.get(option, option)}")
    for option in ROLE_PARAMETERS:
        if option in checked:  # role variables of type int: whole seconds
            checked[option] = math.ceil(checked[option])
    return checked, notes


# --- how long the client's load runs -------------------------------------------------------


def point_seconds(
    requests: int | None, duration: float | None, rate: float | None, ramp: float
) -> float | None:
    """Seconds one step of the load sends for; None when only the server's speed bounds it.

    An open loop sends `requests` at `rate` after a linear ramp: at most requests/rate +
    ramp/2 seconds. A closed loop with a request count ends when the server has answered them.
    `duration` bounds either.
    """
    scheduled = requests / rate + ramp / 2 if requests and rate else None
    if duration is not None:
        return duration if scheduled is None else min(duration, scheduled)
    return scheduled


def planned_load_seconds(parameters: Mapping[str, Any], api: str | None) -> float | None:
    """Seconds the client's whole load (every sweep point) sends for, or None if unknown.

    The client's own plan (build_config and sweep.plan_sweep) says how many points a sweep has
    and what each one sends; only what the session fills in is stood in for.
    """
    try:
        from hpcansible_jobs.bench import config, sweep
    except ImportError:
        return None
    if api is None:
        return None
    values = {
        name: value
        for name, value in parameters.items()
        if name not in ("prompts", "body", "gate_file", *ROLE_PARAMETERS)
    }
    values.update(
        endpoint=PLAN_ENDPOINTS.get(api, PLAN_ENDPOINTS["default"]), api=api, output="/nonexistent"
    )
    try:
        points = sweep.plan_sweep(config.build_config(values)).points
    except (config.UserError, ValueError):
        return None
    total = 0.0
    for point in points:
        plan = point.config
        seconds = point_seconds(
            plan.requests, plan.duration, plan.rate[0] if plan.rate else None, plan.ramp
        )
        if seconds is None:
            return None
        total += seconds
    return total


def time_limit_notes(service: dict, client: dict, load_s: float | None) -> list[str]:
    """The pre-submit rule: warn when a job's time limit is shorter than it has to run.

    The service must outlast the session's start (START_ALLOWANCE_S) and the client's whole
    load; the client must also outlast its linger (the live metrics it keeps up afterwards,
    when the recipe sets it). Without an estimate of the load, or without a time limit in the
    recipe (the site's default applies then), it says nothing.
    """
    if load_s is None:
        return []
    notes = []
    linger = client.get("linger") or client["parameters"].get("linger") or 0
    for job, recipe, needed, what in (
        ("service", service, load_s + START_ALLOWANCE_S, "the session's start and"),
        (
            "client",
            client,
            load_s + START_ALLOWANCE_S + linger,
            "the session's start, its linger and",
        ),
    ):
        limit = recipe["resources"].get("time")
        if limit and slurm_time_seconds(limit) < needed:
            notes.append(
                f"{recipe['source']}: {job}.resources.time: {limit} "
                f"({seconds_text(slurm_time_seconds(limit))}) is shorter than {what} the "
                f"client's planned load (about {seconds_text(needed)} in all); the {job} job "
                "would end before the client: raise resources.time"
            )
    return notes
