"""Ollama's native API: /api/generate or /api/chat, streaming NDJSON.

Each line is a JSON object; content is `response` (generate) or `message.content` (chat),
and thinking models stream `thinking` first (counted as generated content). The last
object has `done: true` and the server's counts and timings (nanoseconds), which the
record keeps: eval_count, eval_duration, prompt_eval_count, prompt_eval_duration,
load_duration, total_duration.
"""

from __future__ import annotations

import json
from typing import Any

from hpcansible_jobs.bench.apis.base import join_url
from hpcansible_jobs.bench.apis.llm import StreamingLlmClient, StreamResult, merge_body
from hpcansible_jobs.bench.prompts import Prompt

SERVER_TIMINGS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)


class OllamaClient(StreamingLlmClient):
    def build_url(self) -> str:
        default = "/api/chat" if self.config.ollama_endpoint == "chat" else "/api/generate"
        return join_url(self.config.endpoint, self.config.path or default)

    @property
    def chat(self) -> bool:
        return self.url.rstrip("/").endswith("/chat")

    def build_body(self, prompt: Prompt) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.config.model,
            "stream": True,
            # Ollama has no ignore_eos: num_predict is a maximum only
            "options": {"num_predict": prompt.output_tokens, "seed": self.config.seed},
        }
        if self.chat:
            body["messages"] = prompt.as_messages()
        else:
            body["prompt"] = prompt.text
        return merge_body(body, self.config.extra_body)

    def parse_line(self, line: bytes, out: StreamResult) -> None:
        item = json.loads(line)
        if "error" in item:
            out.server_error(item["error"])
            return
        if self.chat:
            message = item.get("message") or {}
            out.content = bool(message.get("content") or message.get("thinking"))
        else:
            out.content = bool(item.get("response") or item.get("thinking"))
        if item.get("done"):
            out.final = True
            out.output_tokens = item.get("eval_count", -1)
            out.input_tokens = item.get("prompt_eval_count", -1)
            out.detail = {key: item[key] for key in SERVER_TIMINGS if key in item}
            if "done_reason" in item:
                out.detail["done_reason"] = item["done_reason"]
                out.finish_reason = item["done_reason"]
