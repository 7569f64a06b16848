"""LLM answers that count: empty answers are errors, tokens asked against received, and
where every token count came from (the server's stream, its tokenizer, or chunks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_testing import (
    LAST_BODIES,
    PROMPT_TOKENS,
    TEMPLATE_TOKENS_END,
    TEMPLATE_TOKENS_PER_MESSAGE,
    nousage_prompt_tokens,
)
from hpcansible_jobs.bench.metrics import Aggregate
from hpcansible_jobs.bench.summary import run_warnings, summarize, tokens_json


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]


def warning_codes(summary: dict) -> list[str]:
    """The run's warnings but client_invalid, which a busy test machine may raise."""
    return [w["code"] for w in summary["warnings"] if w["code"] != "client_invalid"]


def write_prompts(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts))
    return path


@pytest.mark.parametrize("api", ["openai", "ollama"])
def test_an_answer_without_content_is_an_empty_response_error(
    run_bench, http_server, tmp_path: Path, api: str
) -> None:
    prompts = write_prompts(tmp_path / "p.jsonl", ["answer me", "EMPTY please", "tell more"])
    code, summary, out = run_bench(
        "--endpoint",
        http_server,
        "--api",
        api,
        "--model",
        "m",
        "--prompts",
        str(prompts),
        "--seed",
        "3",
        "--requests",
        "9",
        "--output-tokens",
        "4",
        "--slo",
        "ttft_ms:10000",
    )
    assert code == 0
    requests = summary["requests"]
    assert (requests["total"], requests["succeeded"], requests["failed"]) == (9, 6, 3)
    assert requests["errors"] == {"empty_response": 3}
    assert "no content token" in requests["error_examples"]["empty_response"]
    assert summary["goodput"]["attainment"] == pytest.approx(6 / 9, abs=1e-6)
    assert summary["latency_ms"]["ttft"]["count"] == 6  # empty answers have no latency
    assert summary["throughput"]["output_tokens_per_s"] > 0
    (flag,) = [w for w in summary["warnings"] if w["code"] == "empty_responses"]
    assert "3 of 9 answers (33.3%)" in flag["message"]
    empty = [r for r in records(out) if r["error"] == "empty_response"]
    assert len(empty) == 3 and all(r["first_token_ms"] is None for r in empty)
    assert all(r["output_tokens_asked"] == 4 for r in records(out))


def test_output_tokens_asked_and_received(run_bench, http_server, tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "p.jsonl", ["SHORT one", "a full answer"])
    _, summary, out = run_bench(
        "--endpoint",
        http_server + "/v1",
        "--api",
        "openai",
        "--prompts",
        str(prompts),
        "--requests",
        "4",
        "--output-tokens",
        "10",
    )
    tokens = summary["tokens"]
    assert tokens["output_asked_total"] == 40
    assert tokens["output_total"] == 2 * 1 + 2 * 10
    assert tokens["output_received_share"] == pytest.approx(22 / 40)
    (short,) = [w for w in summary["warnings"] if w["code"] == "output_tokens_short"]
    assert "received 22 of 40" in short["message"]
    assert sorted(r["output_tokens"] for r in records(out)) == [1, 1, 10, 10]
    assert all(r["output_tokens_source"] == "server" for r in records(out))


def test_no_warning_when_everything_arrives(run_bench, http_server) -> None:
    _, summary, _ = run_bench(
        "--endpoint", http_server, "--api", "openai", "--requests", "3", "--output-tokens", "2"
    )
    assert warning_codes(summary) == []
    assert summary["tokens"]["output_received_share"] == 1.0
    assert summary["tokens"]["input_total"] == 3 * PROMPT_TOKENS


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_server_without_streamed_usage_gets_its_tokenizers_counts(
    run_bench, http_server, tmp_path: Path, endpoint: str
) -> None:
    """Like llama-cpp-python: input tokens from /extras/tokenize/count plus the template's
    tokens measured once, output tokens from the chunks; all labelled."""
    texts = ["one two three", "four five", "six seven eight nine ten"]
    prompts = write_prompts(tmp_path / "p.jsonl", texts)
    code, summary, out = run_bench(
        "--endpoint",
        http_server + "/nousage/v1",
        "--api",
        "openai",
        "--openai-endpoint",
        endpoint,
        "--prompts",
        str(prompts),
        "--requests",
        "6",
        "--output-tokens",
        "3",
    )
    assert code == 0
    rows = records(out)
    for row in rows:
        assert row["input_tokens_source"] == "tokenize"
        assert row["output_tokens_source"] == "chunks" and row["tokens_counted"] == "chunks"
    # every count equals what the server itself reports for that prompt (non-streamed usage)
    expected = {
        t: nousage_prompt_tokens(
            {"messages": [{"content": t}]} if endpoint == "chat" else {"prompt": t}
        )
        for t in texts
    }
    if endpoint == "chat":
        assert expected["four five"] == TEMPLATE_TOKENS_PER_MESSAGE + 2 + TEMPLATE_TOKENS_END
    assert summary["tokens"]["input_total"] == 2 * sum(expected.values())
    tokens = summary["tokens"]
    assert (tokens["input_source"], tokens["output_source"]) == ("tokenize", "chunks")
    assert tokens["sources"] == {"input": {"tokenize": 6}, "output": {"chunks": 6}}
    assert tokens["output_total"] == 18
    assert warning_codes(summary) == []


def test_streamed_usage_wins_and_no_tokenizer_is_asked(run_bench, http_server) -> None:
    LAST_BODIES.pop("/nousage/extras/tokenize/count", None)
    _, summary, out = run_bench(
        "--endpoint", http_server + "/v1", "--api", "openai", "--requests", "2"
    )
    assert summary["tokens"]["input_source"] == "server"
    assert all(r["input_tokens_source"] == "server" for r in records(out))
    assert "/nousage/extras/tokenize/count" not in LAST_BODIES


def test_missing_input_counts_are_flagged() -> None:
    agg = Aggregate(api="openai", total=2, succeeded=2, output_tokens=4, output_asked=4)
    agg.token_sources = {"input.none": 2, "output.chunks": 2}
    tokens = tokens_json(agg)
    assert tokens["input_source"] == "none" and tokens["output_source"] == "chunks"
    (missing,) = run_warnings(agg, tokens, [], None)
    assert missing["code"] == "input_tokens_missing"


def test_mixed_sources_and_one_percent_of_empty_answers() -> None:
    agg = Aggregate(api="ollama", total=200, succeeded=198, failed=2, output_asked=200)
    agg.output_tokens = 198
    agg.errors = {"empty_response": 2}
    agg.token_sources = {"input.server": 150, "input.tokenize": 48, "output.server": 198}
    tokens = tokens_json(agg)
    assert tokens["input_source"] == "mixed" and tokens["output_source"] == "server"
    assert run_warnings(agg, tokens, [], None) == []  # exactly 1 % is not more than 1 %
    agg.errors = {"empty_response": 3}
    assert [w["code"] for w in run_warnings(agg, tokens, [], None)] == ["empty_responses"]


def test_ignore_eos_asks_for_a_fixed_length(run_bench, http_server) -> None:
    run_bench(
        "--endpoint",
        http_server + "/v1",
        "--api",
        "openai",
        "--requests",
        "1",
        "--output-tokens",
        "5",
        "--ignore-eos",
    )
    body = LAST_BODIES["/v1/chat/completions"]
    assert body["ignore_eos"] is True and body["min_tokens"] == body["max_tokens"] == 5
    run_bench("--endpoint", http_server + "/v1", "--api", "openai", "--requests", "1")
    assert "min_tokens" not in LAST_BODIES["/v1/chat/completions"]


def test_summary_of_an_old_aggregate_has_no_asked_tokens() -> None:
    """bench merge of output directories written before tokens were asked for."""
    old = Aggregate(api="openai", total=1, succeeded=1, output_tokens=3).to_json()
    del old["output_asked"], old["token_sources"]
    summary = summarize(Aggregate.from_json(old), {}, {}, {})
    assert summary["tokens"]["output_asked_total"] == 0
    assert summary["tokens"]["output_received_share"] is None
    assert summary["warnings"] == []
