"""Prompts: synthetic ones with a set length, a JSONL file, or a built-in set shipped with
the package (`prompts: default`); all picked in a seeded, reproducible order.

The built-in `default` set (data/default.jsonl) was written for this project: a few
hundred instructions and questions on varied topics, from a few words to a few
paragraphs, that a small chat model answers at length (so that the answer, not the
model's end-of-sequence token, fills the output tokens asked for).

Synthetic prompts are built from short, common English words that tokenizers (Llama,
Gemma, GPT BPE vocabularies) keep as one token each with their leading space, so N words
come out close to N input tokens. The server-reported prompt token count is what the
summary uses; the requested count is only the target.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpcansible_jobs.errors import UserError

# Single-token words in common LLM vocabularies (with a leading space).
_WORD_TEXT = (
    "the of and to in is was for on as with by at from his her he she it they we you are "
    "be this that have had not but what all were when there can an which their said if do "
    "will each about how up out them then many some so these would other into has more two "
    "time like see no way could people my than first been who its now find long down day did "
    "get come made may part over new sound take only little work know place year live me back "
    "give most very after thing our just name good man think say great where help through "
    "much before line right too mean old any same tell boy follow came want show also around "
    "form three small set put end does another well large must big even such because turn "
    "here why ask went men read need land different home us move try kind hand picture again "
    "change off play spell air away animal house point page letter mother answer found study "
    "still learn should world high every near add food between own below country plant last "
    "school father keep tree never start city earth eye light thought head under story saw"
)
WORDS = tuple(_WORD_TEXT.split())

# Pool size for synthetic prompts: enough variety against prefix caches, bounded memory.
SYNTHETIC_POOL = 1024
# Built-in prompt sets, package data next to this module: `prompts: NAME` or `builtin:NAME`.
BUILTIN_PREFIX = "builtin:"
BUILTIN_SETS = {"default": "default.jsonl"}
DATA_DIR = Path(__file__).parent / "data"


def prompts_path(value: str, where: str) -> Path:
    """Where the prompts of `--prompts VALUE` are: a built-in set's file, or VALUE as a
    path ($VARS and ~ expanded). A bare built-in name wins over a file of that name in
    the working directory (write ./default for the file)."""
    name = value.removeprefix(BUILTIN_PREFIX)
    if name in BUILTIN_SETS:
        return DATA_DIR / BUILTIN_SETS[name]
    if value.startswith(BUILTIN_PREFIX):
        known = ", ".join(sorted(BUILTIN_SETS))
        raise UserError(f"{where}: unknown built-in prompt set {name!r} (known: {known})")
    return Path(os.path.expandvars(value)).expanduser()


@dataclass(frozen=True)
class Prompt:
    """One prompt: plain text or chat messages, and how many tokens to ask for."""

    text: str
    messages: tuple[dict[str, Any], ...] | None
    output_tokens: int

    def as_messages(self) -> list[dict[str, Any]]:
        if self.messages is not None:
            return list(self.messages)
        return [{"role": "user", "content": self.text}]


def synthetic_prompts(
    input_tokens: int, output_tokens: int, seed: int, count: int = SYNTHETIC_POOL
) -> list[Prompt]:
    """`count` distinct prompts of `input_tokens` words each, drawn from a seeded RNG."""
    rng = random.Random(seed)
    prompts = []
    for _ in range(count):
        words = rng.choices(WORDS, k=input_tokens)
        prompts.append(Prompt(" ".join(words), None, output_tokens))
    return prompts


def load_jsonl_prompts(path: str | Path, default_output_tokens: int) -> list[Prompt]:
    """Read prompts from JSONL: {"prompt": str} or {"messages": [...]}, with an optional
    "output_tokens" (or "max_tokens") per line. Blank lines are skipped."""
    file = Path(path)
    prompts: list[Prompt] = []
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise UserError(f"{file}: cannot read prompts ({error.strerror})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        prompts.append(_parse_prompt_line(line, f"{file}:{number}", default_output_tokens))
    if not prompts:
        raise UserError(f"{file}: no prompts in the file")
    return prompts


def _parse_prompt_line(line: str, where: str, default_output_tokens: int) -> Prompt:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as error:
        raise UserError(f"{where}: invalid JSON ({error.msg})") from None
    if not isinstance(item, dict):
        raise UserError(f"{where}: expected a JSON object")
    tokens = item.get("output_tokens", item.get("max_tokens", default_output_tokens))
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1:
        raise UserError(f"{where}: output_tokens must be a positive integer")
    if isinstance(item.get("prompt"), str):
        return Prompt(item["prompt"], None, tokens)
    messages = item.get("messages")
    if isinstance(messages, list) and messages and all(isinstance(m, dict) for m in messages):
        text = "\n".join(str(m.get("content", "")) for m in messages)
        return Prompt(text, tuple(messages), tokens)
    raise UserError(f'{where}: expected a "prompt" string or a "messages" list')


def load_prompts(
    prompts_file: str | None,
    input_tokens: int,
    output_tokens: int,
    seed: int,
    needed: int | None,
) -> list[Prompt]:
    """The prompt list a run cycles through, in a seeded order."""
    if prompts_file:
        prompts = load_jsonl_prompts(prompts_path(prompts_file, "prompts"), output_tokens)
        random.Random(seed).shuffle(prompts)
        return prompts
    count = SYNTHETIC_POOL if needed is None else max(1, min(needed, SYNTHETIC_POOL))
    return synthetic_prompts(input_tokens, output_tokens, seed, count)
