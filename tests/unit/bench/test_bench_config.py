"""Config validation: CLI and YAML share one path; errors are one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_testing import parse_bench_args
from hpcansible.errors import UserError
from hpcansible_jobs.bench.cli import config_from_args
from hpcansible_jobs.bench.config import build_config, check_parameters, parse_slo
from hpcansible_jobs.bench.sweep import plan_sweep

BASE = {"endpoint": "http://127.0.0.1:1", "api": "openai", "output": "/tmp/x"}


def test_cli_and_yaml_give_the_same_config(tmp_path: Path) -> None:
    config_file = tmp_path / "client.yml"
    config_file.write_text(
        "endpoint: http://node1:11434\napi: ollama\nmodel: llama3.2\n"
        "concurrency: [1, 2, 4]\nslo: {ttft_ms: 500}\noutput: /tmp/o\n"
    )
    from_file = config_from_args(parse_bench_args(["bench", "--config", str(config_file)]))
    from_cli = config_from_args(
        parse_bench_args(
            [
                "bench",
                "--endpoint",
                "http://node1:11434",
                "--api",
                "ollama",
                "--model",
                "llama3.2",
                "--concurrency",
                "1,2,4",
                "--slo",
                "ttft_ms:500",
                "--output",
                "/tmp/o",
            ]
        )
    )
    assert from_file == from_cli
    assert from_file.concurrency == (1, 2, 4)
    plan = plan_sweep(from_file)
    assert plan.axes == {"concurrency": [1, 2, 4]}
    assert [p.config.concurrency for p in plan.points] == [(1,), (2,), (4,)]


def test_command_line_overrides_the_file(tmp_path: Path) -> None:
    config_file = tmp_path / "client.yml"
    config_file.write_text("endpoint: http://n:1\napi: http\nrate: 5\noutput: /tmp/o\n")
    config = config_from_args(
        parse_bench_args(["bench", "--config", str(config_file), "--rate", "9"])
    )
    assert config.rate == (9.0,)
    assert config.open_loop


def test_file_errors_name_the_file_and_key(tmp_path: Path) -> None:
    config_file = tmp_path / "client.yml"
    config_file.write_text("endpoint: http://n:1\napi: http\nrate: fast\noutput: /tmp/o\n")
    message = r"client.yml: rate: expected a number or a comma-separated list, got 'fast'"
    with pytest.raises(UserError, match=message):
        config_from_args(parse_bench_args(["bench", "--config", str(config_file)]))
    config_file.write_text("endpoint: http://n:1\napi: http\nrat: 5\noutput: /tmp/o\n")
    with pytest.raises(UserError, match=r"client.yml: rat: unknown option"):
        config_from_args(parse_bench_args(["bench", "--config", str(config_file)]))
    config_file.write_text("endpoint: [\n")
    with pytest.raises(UserError, match=r"client.yml: line \d+ invalid YAML"):
        config_from_args(parse_bench_args(["bench", "--config", str(config_file)]))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"endpoint": None}, "endpoint: required"),
        ({"api": "grpc"}, "api: expected one of ollama, openai, http, redis"),
        ({"endpoint": "node1:11434"}, "endpoint: expected a URL like http://host:port"),
        ({"rate": 10, "concurrency": 2}, "rate: give --rate (open loop) or --concurrency"),
        ({"rate": 0}, "rate: must be positive"),
        ({"burstiness": 0.5}, "burstiness: applies only to --arrivals gamma"),
        ({"requests": 10, "warmup_requests": 10}, "warmup_requests: must be smaller"),
        ({"duration": 5, "warmup": 5}, "warmup: must be shorter than duration"),
        ({"workers": 3, "concurrency": 2}, "workers: more workers than concurrent streams"),
        ({"slo": "ttft:5"}, "slo: unknown SLO 'ttft'"),
        ({"slo": "ttft_ms"}, "slo: expected KEY:MILLISECONDS"),
        ({"max_error_rate": 2}, "max_error_rate: must be at most 1"),
        ({"extra_body": "{bad"}, "extra_body: invalid JSON"),
        ({"prompts": "/nonexistent.jsonl"}, "prompts: no such file"),
        ({"quiet": "maybe"}, "quiet: expected true or false"),
    ],
)
def test_invalid_values_are_one_line_errors(override: dict, message: str) -> None:
    values = {**BASE, **override}
    with pytest.raises(UserError) as caught:
        build_config(values, source="client.yml")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_cli_errors_name_the_flag(bench_error) -> None:
    message = bench_error(
        "--endpoint", "http://h:1", "--api", "http", "--rate", "x", "--output", "/tmp/o"
    )
    assert message == "--rate: expected a number or a comma-separated list, got 'x'"
    message = bench_error("--endpoint", "http://h:1", "--api", "ollama", "--output", "/tmp/o")
    assert message == "--model: required for --api ollama"


def test_defaults_and_derived_values() -> None:
    config = build_config(BASE)
    assert config.requests == 100  # neither --requests nor --duration
    assert config.timeout == 600.0  # LLM default
    assert config.max_in_flight == 1  # closed loop: the concurrency
    http = build_config({**BASE, "api": "http", "body": "{}", "rate": "100"})
    assert http.method == "POST" and http.body == b"{}"
    assert http.max_in_flight == 1024 and http.timeout == 30.0
    assert build_config({**BASE, "connections": 8}).max_in_flight == 8


def test_body_from_file_and_headers(tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(b'{"a": 1}')
    config = build_config(
        {**BASE, "api": "http", "body": f"@{body}", "headers": ["X-A: 1", "Authorization: B t"]}
    )
    assert config.body == b'{"a": 1}'
    assert config.headers == {"X-A": "1", "Authorization": "B t"}
    with pytest.raises(UserError, match="body: cannot read"):
        build_config({**BASE, "api": "http", "body": f"@{tmp_path / 'missing'}"})


def test_parse_slo_accepts_string_and_mapping() -> None:
    assert parse_slo("ttft_ms:500, tpot_ms:50", "--slo") == {"ttft_ms": 500.0, "tpot_ms": 50.0}
    assert parse_slo({"e2e_ms": 2}, "x") == {"e2e_ms": 2.0}


def test_role_layout_with_bench_key(tmp_path: Path) -> None:
    config_file = tmp_path / "client.yml"
    config_file.write_text("bench:\n  endpoint: http://n:1\n  api: http\n  output: /tmp/o\n")
    config = config_from_args(parse_bench_args(["bench", "--config", str(config_file)]))
    assert config.api == "http"


def test_password_is_masked_in_the_summary_mapping() -> None:
    config = build_config({**BASE, "api": "redis", "endpoint": "redis://h:6379", "password": "p"})
    assert config.to_mapping()["password"] == "***"
    assert config.to_mapping(mask_secrets=False)["password"] == "p"


# --- recipe parameters, checked before anything is submitted -----------------------------

RECIPE = "recipes/x/client.yml: client.parameters"


def test_check_parameters_normalizes_a_seed_era_sweep() -> None:
    checked = check_parameters(
        {"concurrency": "1,2,5", "output_tokens": "50,100", "input_tokens": 50, "slo": "ttft_ms:1"},
        RECIPE,
        api="openai",
        keys={"concurrency": "concurrent_requests", "output_tokens": "max_tokens"},
    )
    assert checked == {
        "concurrency": [1, 2, 5],
        "output_tokens": [50, 100],
        "input_tokens": 50,
        "slo": {"ttft_ms": 1.0},
    }
    # build_config takes the normalized values again
    config = build_config({**BASE, **checked})
    assert config.concurrency == (1, 2, 5) and config.output_tokens == (50, 100)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"output_tokens": "50,abc"}, f"{RECIPE}.max_tokens: expected an integer or a comma-"),
        ({"concurrency": [1, "x"]}, f"{RECIPE}.concurrent_requests: expected an integer"),
        ({"requests": "10,20"}, f"{RECIPE}.requests: expected an integer, got '10,20' (only"),
        ({"timeout": [1, 2]}, f"{RECIPE}.timeout: expected a number, got [1, 2] (only"),
        ({"output_tokens": 2.5}, f"{RECIPE}.max_tokens: expected an integer or a comma"),
        ({"requests": 2.5}, f"{RECIPE}.requests: expected an integer, got 2.5"),
        ({"rate": "1,0"}, f"{RECIPE}.rate: must be positive"),
        ({"sweep": "zip", "rate": "1,2", "output_tokens": "1,2,3"}, f"{RECIPE}.sweep: zip"),
        ({"endpoint": "http://x:1"}, f"{RECIPE}.endpoint: set by the session"),
        ({"model": None, "requests": 3}, f"{RECIPE}.model: required for --api ollama"),
        ({"gate_timeout": "soon"}, f"{RECIPE}.gate_timeout: expected a number"),
        ({"slo_attainment": 1.5}, f"{RECIPE}.slo_attainment: must be at most 1"),
        ({"prompts": "builtin:nope"}, f"{RECIPE}.prompts: unknown built-in prompt set"),
        ({"burst": 1}, f"{RECIPE}.burst: unknown option"),
    ],
)
def test_check_parameters_errors_name_the_recipe_key(parameters: dict, message: str) -> None:
    keys = {"concurrency": "concurrent_requests", "output_tokens": "max_tokens"}
    api = "ollama" if "model" in parameters else "openai"
    with pytest.raises(UserError) as caught:
        check_parameters(parameters, RECIPE, api=api, keys=keys)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_check_parameters_leaves_cluster_files_alone() -> None:
    checked = check_parameters(
        {"prompts": "$HOME/prompts.jsonl", "body": "@/scratch/body.json", "gate_file": "$X/g"},
        RECIPE,
        api="openai",
    )
    assert checked["prompts"] == "$HOME/prompts.jsonl" and checked["gate_file"] == "$X/g"


def test_gate_options_and_defaults() -> None:
    config = build_config(BASE)
    assert (config.gate_file, config.gate_timeout) == (None, 180.0)
    assert config.slo_attainment == 0.9 and config.sweep == "product"
    assert config.input_tokens == (128,) and config.output_tokens == (128,)
    gated = build_config({**BASE, "gate_file": "/tmp/g", "gate_timeout": "30"})
    assert (gated.gate_file, gated.gate_timeout) == ("/tmp/g", 30.0)
