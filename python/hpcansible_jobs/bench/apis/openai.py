"""OpenAI-compatible APIs: /v1/chat/completions or /v1/completions, SSE streaming.

Covers vLLM, llama.cpp and Ollama's OpenAI endpoints. The request asks for
`stream_options.include_usage`, so the last data event carries `usage` (prompt_tokens,
completion_tokens); `data: [DONE]` closes the stream. Content is `choices[0].delta.content`
(chat, or `reasoning_content` from reasoning models) or `choices[0].text` (completions).

llama-cpp-python's server (0.3.x) streams no usage at all: its stream chunks carry text
only (llama_cpp/llama.py `_create_completion`), and it ignores `stream_options`. Before the
run, the client therefore asks that server's tokenizer (`POST /extras/tokenize/count`)
for every prompt it will send, and measures the chat template's own tokens once with one
non-streamed request (its `usage.prompt_tokens` minus the content's count). Those input
counts are marked `input_tokens_source: tokenize`; a server that streams usage (vLLM,
llama.cpp's own llama-server, Ollama) always wins over them. Output tokens of such a
server are counted from the content chunks (one token each there).

`ignore_eos: true` asks for a fixed output length: it sends `ignore_eos` (vLLM,
llama-server) and `min_tokens` equal to `max_tokens` (vLLM, llama-cpp-python).
"""

from __future__ import annotations

import json
from typing import Any

from hpcansible_jobs.bench.apis.base import join_url
from hpcansible_jobs.bench.apis.llm import StreamingLlmClient, StreamResult, merge_body
from hpcansible_jobs.bench.prompts import Prompt

DONE = b"[DONE]"
# llama-cpp-python's tokenizer endpoint: {"input": text} -> {"count": n}
TOKENIZE_COUNT_PATH = "extras/tokenize/count"
# Content of the one short request that measures the chat template's tokens.
TEMPLATE_PROBE_TEXT = "Hi"


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
            body["min_tokens"] = prompt.output_tokens
        return merge_body(body, self.config.extra_body)

    # --- input tokens from the server's tokenizer (servers that stream no usage) ----------

    def _server_root(self) -> str:
        base = self.config.endpoint.rstrip("/")
        return base[: -len("/v1")] if base.endswith("/v1") else base

    async def _post_json(self, url: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST outside the timed path; None when the server does not answer 200 with JSON."""
        assert self.session is not None
        try:
            async with self.session.post(
                url, data=json.dumps(body).encode(), headers=self.headers
            ) as response:
                if response.status != 200:
                    await response.read()
                    return None
                data = await response.json(content_type=None)
        except Exception:  # no such endpoint, or not this kind of server: no counts
            return None
        return data if isinstance(data, dict) else None

    async def _count(self, text: str) -> int | None:
        body: dict[str, Any] = {"input": text}
        if self.config.model:
            body["model"] = self.config.model
        data = await self._post_json(join_url(self._server_root(), TOKENIZE_COUNT_PATH), body)
        count = None if data is None else data.get("count")
        return count if isinstance(count, int) and not isinstance(count, bool) else None

    async def _template_tokens(self, roles: tuple[str, ...], probe_tokens: int) -> int | None:
        """Prompt tokens that the server adds around the contents (chat template, BOS):
        one non-streamed request of one token whose contents are TEMPLATE_PROBE_TEXT."""
        body: dict[str, Any] = {"max_tokens": 1, "stream": False, "seed": self.config.seed}
        if self.config.model:
            body["model"] = self.config.model
        if self.chat:
            body["messages"] = [{"role": role, "content": TEMPLATE_PROBE_TEXT} for role in roles]
        else:
            body["prompt"] = TEMPLATE_PROBE_TEXT
        data = await self._post_json(self.url, body)
        usage = (data or {}).get("usage") or {}
        prompt_tokens = usage.get("prompt_tokens")
        if not isinstance(prompt_tokens, int):
            return None
        return prompt_tokens - len(roles) * probe_tokens

    async def prepare_token_counts(self) -> None:
        added = await self._count("")  # what the tokenizer adds to any text (BOS)
        if added is None:
            return  # not llama-cpp-python's server: its stream's usage is the count
        probe = await self._count(TEMPLATE_PROBE_TEXT)
        if probe is None:
            return
        counts: dict[str, int | None] = {}
        template: dict[tuple[str, ...], int | None] = {}
        for k in range(self.prompts_in_use()):
            prompt = self.prompts[k]
            messages = prompt.as_messages() if self.chat else [{"content": prompt.text}]
            roles = tuple(str(m.get("role", "user")) for m in messages)
            if roles not in template:
                template[roles] = await self._template_tokens(roles, probe - added)
            total = template[roles]
            for message in messages:
                content = message.get("content")
                if total is None or not isinstance(content, str):
                    total = None
                    break
                if content not in counts:
                    counts[content] = await self._count(content)
                count = counts[content]
                total = None if count is None else total + count - added
            if total is not None:
                self.input_counts[k] = total

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
                out.finish_reason = choice["finish_reason"]
        usage = item.get("usage")
        if usage:
            out.input_tokens = usage.get("prompt_tokens", -1)
            out.output_tokens = usage.get("completion_tokens", -1)
