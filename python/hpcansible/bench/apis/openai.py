"""OpenAI-compatible APIs: /v1/chat/completions or /v1/completions, SSE streaming.

Covers vLLM, llama.cpp and Ollama's OpenAI endpoints. The request asks for
`stream_options.include_usage`, so the last data event carries `usage` (prompt_tokens,
completion_tokens); `data: [DONE]` closes the stream. Content is `choices[0].delta.content`
(chat, or `reasoning_content` from reasoning models) or `choices[0].text` (completions).
"""

from __future__ import annotations

import json
from typing import Any

from hpcansible.bench.apis.base import join_url
from hpcansible.bench.apis.llm import StreamingLlmClient, StreamResult, merge_body
from hpcansible.bench.prompts import Prompt

DONE = b"[DONE]"


class OpenAiClient(StreamingLlmClient):
    def build_url(self) -> str:
        if self.config.path:
            return join_url(self.config.endpoint, self.config.path)
        suffix = "chat/completions" if self.config.openai_endpoint == "chat" else "completions"
        base = self.config.endpoint.rstrip("/")
        # accept both http://host:8000 and http://host:8000/v1
        return f"{base}/{suffix}" if base.endswith("/v1") else f"{base}/v1/{suffix}"

    @property
    def chat(self) -> bool:
        return self.url.rstrip("/").endswith("/chat/completions")

    def build_body(self, prompt: Prompt) -> dict[str, Any]:
        body: dict[str, Any] = {
            "max_tokens": prompt.output_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            "seed": self.config.seed,
        }
        if self.config.model:
            body["model"] = self.config.model
        if self.chat:
            body["messages"] = prompt.as_messages()
        else:
            body["prompt"] = prompt.text
        if self.config.ignore_eos:
            body["ignore_eos"] = True
        return merge_body(body, self.config.extra_body)

    def parse_line(self, line: bytes, out: StreamResult) -> None:
        if not line.startswith(b"data:"):
            return  # SSE comments (": ping"), event names and ids carry no tokens
        data = line[5:].strip()
        if data == DONE:
            out.final = True
            return
        item = json.loads(data)
        if "error" in item:
            out.server_error(item["error"])
            return
        choices = item.get("choices")
        if choices:
            choice = choices[0]
            if self.chat:
                delta = choice.get("delta") or {}
                out.content = bool(delta.get("content") or delta.get("reasoning_content"))
            else:
                out.content = bool(choice.get("text"))
            if choice.get("finish_reason"):
                out.final = True  # some servers end without [DONE]
        usage = item.get("usage")
        if usage:
            out.input_tokens = usage.get("prompt_tokens", -1)
            out.output_tokens = usage.get("completion_tokens", -1)
