"""The built-in prompt set: shipped as package data, varied, picked with the seed."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from hpcansible.errors import UserError
from hpcansible_jobs.bench.config import build_config
from hpcansible_jobs.bench.prompts import (
    BUILTIN_SETS,
    DATA_DIR,
    load_jsonl_prompts,
    load_prompts,
    prompts_path,
)

ROOT = Path(__file__).resolve().parents[3]
BASE = {"endpoint": "http://127.0.0.1:1", "api": "openai", "output": "/tmp/x"}


def test_the_default_set_is_a_few_hundred_varied_prompts() -> None:
    prompts = load_jsonl_prompts(prompts_path("default", "prompts"), 64)
    texts = [p.text for p in prompts]
    assert len(texts) >= 300
    assert len(set(texts)) == len(texts)
    words = sorted(len(t.split()) for t in texts)
    assert words[0] <= 3  # a few words ...
    assert words[-1] >= 200  # ... to a few paragraphs
    assert sum(w > 40 for w in words) >= 30 and sum(w <= 8 for w in words) >= 50
    assert sum("\n\n" in t for t in texts) >= 10  # multi-paragraph prompts
    assert all(p.output_tokens == 64 and p.messages is None for p in prompts)
    # one JSON object with a prompt per line: the --prompts format
    for line in (DATA_DIR / BUILTIN_SETS["default"]).read_text().splitlines():
        assert set(json.loads(line)) == {"prompt"}


def test_the_set_is_installed_as_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["hpcansible_jobs.bench"]
    assert DATA_DIR / "default.jsonl" in DATA_DIR.parent.glob(patterns[0])
    assert DATA_DIR == ROOT / "python" / "hpcansible_jobs" / "bench" / "data"


def test_prompts_are_picked_with_the_seed() -> None:
    first = [p.text for p in load_prompts("default", 128, 16, seed=1, needed=40)]
    again = [p.text for p in load_prompts("builtin:default", 128, 16, seed=1, needed=40)]
    other = [p.text for p in load_prompts("default", 128, 16, seed=2, needed=40)]
    assert first == again
    assert first != other and sorted(first) == sorted(other)


def test_builtin_names_and_paths() -> None:
    assert prompts_path("default", "x") == DATA_DIR / "default.jsonl"
    assert prompts_path("./default", "x") == Path("./default")
    with pytest.raises(UserError, match=r"^client.yml: prompts: unknown built-in prompt set 'x'"):
        prompts_path("builtin:x", "client.yml: prompts")
    config = build_config({**BASE, "prompts": "default"})
    assert config.prompts == "default"
    with pytest.raises(UserError, match="prompts: unknown built-in prompt set"):
        build_config({**BASE, "prompts": "builtin:nope"}, source="c.yml")


def test_prompts_path_expands_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "p.jsonl").write_text('{"prompt": "hi"}\n')
    monkeypatch.setenv("PROMPT_DIR", str(tmp_path))
    config = build_config({**BASE, "prompts": "$PROMPT_DIR/p.jsonl"})
    assert [p.text for p in load_prompts(config.prompts, 1, 1, 0, None)] == ["hi"]


def test_synthetic_prompts_keep_their_exact_length() -> None:
    prompts = load_prompts(None, input_tokens=50, output_tokens=8, seed=0, needed=5)
    assert len(prompts) == 5 and all(len(p.text.split()) == 50 for p in prompts)
