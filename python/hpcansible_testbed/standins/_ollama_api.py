"""HTTP API of the Ollama stand-in: Ollama's native /api/* and its OpenAI-compatible /v1/*.

Response shapes, field order, status codes and error messages follow Ollama's. Differences:
every response carries `X-Hpcansible-Standin: ollama`; generated text is TOKEN_TEXT repeated, one
token per chunk; the prompt token count is the number of whitespace-separated words in the prompt
(generate: system + prompt + len(context); chat: every message's content), at least 1.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from hpcansible_testbed.standins import STANDIN_HEADER
from hpcansible_testbed.standins._arrival import request_arrival
from hpcansible_testbed.standins._gocompat import format_go_duration, format_rfc3339_nano
from hpcansible_testbed.standins._ollama_engine import (
    SERVER_BUSY_MESSAGE,
    Engine,
    ServerBusy,
    Timing,
)
from hpcansible_testbed.standins._ollama_models import (
    TEMPLATE_TEXT,
    ModelName,
    ModelStore,
    StoredModel,
    parse_model_name,
)
from hpcansible_testbed.standins._ollama_settings import ServerSettings, parse_keep_alive
from hpcansible_testbed.standins._timer import DeadlineSleeper

TOKEN_TEXT = " tok"
NDJSON = "application/x-ndjson"
MAX_BODY_BYTES = 100 * 1024 * 1024  # Ollama sets no limit; long prompts must not be refused
FOREVER_SECONDS = (2**63 - 1) / 1e9  # Go's maximum time.Duration: "keep loaded forever"

SETTINGS = web.AppKey("settings", ServerSettings)
STORE = web.AppKey("store", ModelStore)
ENGINE = web.AppKey("engine", Engine)


# Compact JSON as Go writes it. One encoder for all: json.dumps with options builds a new one per
# call, which costs more than encoding a token's worth of JSON.
dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def created_at() -> str:
    return format_rfc3339_nano(time.time_ns())


class _Later:
    """A top-level value of a JSON object that is only known when the object is written."""

    def __repr__(self) -> str:
        return "LATER"


LATER = _Later()


def json_filler(document: dict[str, Any]) -> Callable[[dict[str, Any]], bytes]:
    """Serialize `document` now, except its LATER values; the function fills those in.

    fill(values) returns exactly `dumps(document with values) + "\\n"`, but encodes only the
    late values: what is the same all along (a long "context") is encoded once, here.
    """
    late: list[str] = []
    texts = ["{"]  # texts[k] comes before late value k; the last one ends the object
    for position, (key, value) in enumerate(document.items()):
        texts[-1] += ("," if position else "") + dumps(key) + ":"
        if value is LATER:
            late.append(key)
            texts.append("")
        else:
            texts[-1] += dumps(value)
    texts[-1] += "}\n"
    head, *rest = (text.encode() for text in texts)

    def fill(values: dict[str, Any]) -> bytes:
        parts = [head]
        for key, text in zip(late, rest, strict=True):
            value = values[key]
            # str() of an int is its JSON, and a little faster than the encoder
            parts += ((str(value) if type(value) is int else dumps(value)).encode(), text)
        return b"".join(parts)

    return fill


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def model_not_found(model: str) -> ApiError:
    return ApiError(404, f"model {json.dumps(model)} not found, try pulling it first")


# ----------------------------------------------------------------------------- application


def create_app(settings: ServerSettings) -> web.Application:
    app = web.Application(middlewares=[_gin_style_not_found], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[STORE] = ModelStore(settings.models_dir)
    app.on_startup.append(_start_engine)
    app.on_cleanup.append(_stop_engine)
    app.on_response_prepare.append(_mark_as_standin)
    app.router.add_get("/", _root)
    app.router.add_get("/api/version", _version)
    app.router.add_get("/api/tags", _tags)
    app.router.add_get("/api/ps", _ps)
    app.router.add_post("/api/show", _show)
    app.router.add_post("/api/pull", _pull)
    app.router.add_delete("/api/delete", _delete)
    app.router.add_post("/api/generate", _generation_handler(NativeGenerate()))
    app.router.add_post("/api/chat", _generation_handler(NativeChat()))
    app.router.add_post("/v1/chat/completions", _generation_handler(OpenAIChat()))
    app.router.add_post("/v1/completions", _generation_handler(OpenAICompletion()))
    app.router.add_get("/v1/models", _openai_models)
    app.router.add_get("/v1/models/{model:.+}", _openai_model)
    return app


async def _start_engine(app: web.Application) -> None:
    sleeper = DeadlineSleeper(asyncio.get_running_loop())
    app[ENGINE] = Engine(app[SETTINGS], sleeper)


async def _stop_engine(app: web.Application) -> None:
    app[ENGINE].sleeper.close()


async def _mark_as_standin(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers[STANDIN_HEADER] = "ollama"


@web.middleware
async def _gin_style_not_found(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        return web.Response(status=404, text="404 page not found")


class GinAccessLogger(AbstractAccessLogger):
    """One line per request in the format of Ollama's HTTP framework (gin)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, elapsed: float) -> None:
        stamp = _wall_clock("%Y/%m/%d - %H:%M:%S")
        remote = request.remote or ""
        sys.stderr.write(
            f"[GIN] {stamp} | {response.status:3d} | {format_go_duration(elapsed):>13} | "
            f"{remote:>15} | {request.method:<7} {json.dumps(request.path)}\n"
        )


def _wall_clock(pattern: str) -> str:
    return time.strftime(pattern)


# ----------------------------------------------------------------------------- small endpoints


async def _root(_request: web.Request) -> web.Response:
    return web.Response(text="Ollama is running")


async def _version(request: web.Request) -> web.Response:
    return web.json_response({"version": request.app[SETTINGS].version}, dumps=dumps)


def _stored_json(stored: StoredModel) -> dict[str, Any]:
    return {
        "name": stored.name.display,
        "model": stored.name.display,
        "modified_at": format_rfc3339_nano(stored.modified_ns, utc=False),
        "size": stored.size,
        "digest": stored.manifest_digest.removeprefix("sha256:"),
        "details": stored.details,
    }


async def _tags(request: web.Request) -> web.Response:
    models = [_stored_json(stored) for stored in request.app[STORE].all_models()]
    return web.json_response({"models": models}, dumps=dumps)


async def _ps(request: web.Request) -> web.Response:
    running = []
    for model, expires_wall in request.app[ENGINE].running_models():
        expires_wall = min(expires_wall, time.time() + FOREVER_SECONDS)
        entry = _stored_json(model.stored)
        del entry["modified_at"]
        entry["expires_at"] = format_rfc3339_nano(int(expires_wall * 1e9), utc=False)
        entry["size_vram"] = 0  # the stand-in "runs on CPU": `ollama ps` shows 100% CPU
        running.append(entry)
    return web.json_response({"models": running}, dumps=dumps)


async def _read_json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        raise ApiError(400, "missing request body")
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise ApiError(400, f"invalid character in request body: {error}") from None
    if not isinstance(document, dict):
        raise ApiError(400, "json: cannot unmarshal request body into a JSON object")
    return document


def _native_error(error: ApiError) -> web.Response:
    return web.json_response({"error": error.message}, status=error.status, dumps=dumps)


def _name_field(body: dict[str, Any]) -> str:
    # Ollama accepts the older "name" wherever "model" is expected for model management.
    value = body.get("model") or body.get("name") or ""
    if not isinstance(value, str):
        raise ApiError(400, "model must be a string")
    return value


def _existing_model(request: web.Request, text: str) -> StoredModel:
    name = parse_model_name(text)
    stored = request.app[STORE].get(name) if name is not None else None
    if stored is None:
        raise ApiError(404, f"model '{text}' not found")
    return stored


async def _show(request: web.Request) -> web.Response:
    try:
        text = _name_field(await _read_json(request))
        if not text:
            raise ApiError(400, "model is required")
        stored = _existing_model(request, text)
    except ApiError as error:
        return _native_error(error)
    family = stored.details["family"]
    modelfile = (
        '# Modelfile generated by "ollama show"\n'
        "# To build a new Modelfile based on this, replace FROM with:\n"
        f"# FROM {stored.name.display}\n\n"
        f"FROM {stored.name.display}\n"
        f'TEMPLATE "{TEMPLATE_TEXT}"\n'
    )
    return web.json_response(
        {
            "modelfile": modelfile,
            "parameters": "",
            "template": TEMPLATE_TEXT,
            "details": stored.details,
            "model_info": {
                "general.architecture": family,
                "general.file_type": 15,  # Q4_K_M
                "general.parameter_count": stored.parameter_count,
                "general.quantization_version": 2,
                f"{family}.context_length": 4096,
            },
            "capabilities": ["completion"],
            "modified_at": format_rfc3339_nano(stored.modified_ns, utc=False),
        },
        dumps=dumps,
    )


async def _delete(request: web.Request) -> web.Response:
    try:
        text = _name_field(await _read_json(request))
        stored = _existing_model(request, text)
    except ApiError as error:
        return _native_error(error)
    request.app[STORE].delete(stored.name)
    request.app[ENGINE].forget(stored.name.display)
    return web.Response()


async def _pull(request: web.Request) -> web.StreamResponse:
    try:
        body = await _read_json(request)
        name = parse_model_name(_name_field(body))
        if name is None:
            raise ApiError(400, "invalid model name")
    except ApiError as error:
        return _native_error(error)
    store = request.app[STORE]
    layers, manifest, blobs = store.plan_pull(name)
    statuses: list[dict[str, Any]] = [{"status": "pulling manifest"}]
    for layer in layers:
        status = f"pulling {layer.digest.removeprefix('sha256:')[:12]}"
        statuses.append({"status": status, "digest": layer.digest, "total": layer.size})
        statuses.append({**statuses[-1], "completed": layer.size})
    statuses.append({"status": "verifying sha256 digest"})
    statuses.append({"status": "writing manifest"})
    try:
        store.write_pull(name, manifest, blobs)
    except OSError as error:
        return _native_error(ApiError(500, f"write manifest: {error}"))
    statuses.append({"status": "success"})
    if body.get("stream") is False:
        return web.json_response(statuses[-1], dumps=dumps)
    response = web.StreamResponse(headers={"Content-Type": NDJSON})
    await response.prepare(request)
    for status in statuses:
        await response.write((dumps(status) + "\n").encode())
    await response.write_eof()
    return response


async def _openai_models(request: web.Request) -> web.Response:
    data = [_openai_model_json(stored) for stored in request.app[STORE].all_models()]
    return web.json_response({"object": "list", "data": data}, dumps=dumps)


async def _openai_model(request: web.Request) -> web.Response:
    text = request.match_info["model"]
    try:
        stored = _existing_model(request, text)
    except ApiError:
        return _openai_error(ApiError(404, f"model '{text}' not found"))
    return web.json_response(_openai_model_json(stored), dumps=dumps)


def _openai_model_json(stored: StoredModel) -> dict[str, Any]:
    return {
        "id": stored.name.display,
        "object": "model",
        "created": stored.modified_ns // 1_000_000_000,
        "owned_by": stored.name.namespace,
    }


def _openai_error(error: ApiError) -> web.Response:
    kinds = {400: "invalid_request_error", 404: "not_found_error"}
    document = {
        "error": {
            "message": error.message,
            "type": kinds.get(error.status, "api_error"),
            "param": None,
            "code": None,
        }
    }
    return web.json_response(document, status=error.status, dumps=dumps)


# ----------------------------------------------------------------------------- generation


@dataclass
class Ask:
    """What a generation request asks for, whichever API it came through."""

    model: str  # as the client wrote it; echoed back like Ollama does
    name: ModelName | None
    prompt_tokens: int
    max_tokens: int | None  # None: the "model" decides (OLLAMA_STANDIN_TOKENS, reason "stop")
    stream: bool
    keep_alive: float | None = None
    include_usage: bool = False
    load_only: bool = False
    openai_id: str = ""
    openai_created: int = 0


@dataclass
class Outcome:
    ask: Ask
    timing: Timing
    token_count: int
    done_reason: str


def count_words(text: object) -> int:
    if isinstance(text, str):
        return len(text.split())
    if isinstance(text, list):  # OpenAI content parts: [{"type": "text", "text": "..."}]
        return sum(count_words(part.get("text")) for part in text if isinstance(part, dict))
    return 0


def _positive_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if value > 0 else None


def _keep_alive_field(body: dict[str, Any]) -> float | None:
    if body.get("keep_alive") is None:
        return None
    try:
        return parse_keep_alive(body["keep_alive"])
    except ValueError:
        raise ApiError(400, f"invalid keep_alive {body['keep_alive']!r}") from None


def _model_field(body: dict[str, Any]) -> tuple[str, ModelName | None]:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model is required")
    return model, parse_model_name(model)


class Kind(ABC):
    """One generation API: how its requests read and how its responses are written."""

    content_type = NDJSON

    @abstractmethod
    def parse(self, body: dict[str, Any]) -> Ask: ...

    @abstractmethod
    def token_chunk(self, ask: Ask) -> Callable[[], bytes]:
        """A function returning the bytes of one streamed token; called once per token."""

    @abstractmethod
    def closing(self, outcome: Outcome) -> Callable[[], bytes]:
        """A function returning everything written after the last token, with its final timing.

        Called while the stream is under way: whatever does not depend on the timing is encoded
        then, so the end of the stream costs little more than reading the clock.
        """

    @abstractmethod
    def document(self, outcome: Outcome) -> dict[str, Any]:
        """The whole answer when stream is false."""

    def error(self, error: ApiError) -> web.Response:
        return _native_error(error)

    def load_only(self, ask: Ask, unloaded: bool) -> dict[str, Any]:
        raise NotImplementedError


def _generation_handler(kind: Kind) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        arrival = request_arrival(request)  # the timing reference: as the request came in
        engine = request.app[ENGINE]
        try:
            ask = kind.parse(await _read_json(request))
            stored = request.app[STORE].get(ask.name) if ask.name is not None else None
            if stored is None:
                raise model_not_found(ask.model)
            if ask.load_only:
                await engine.load_only(stored, ask.keep_alive)
                return web.json_response(kind.load_only(ask, ask.keep_alive == 0), dumps=dumps)
            return await _generate(request, engine, kind, ask, stored, arrival)
        except ServerBusy:
            return kind.error(ApiError(503, SERVER_BUSY_MESSAGE))
        except ApiError as error:
            return kind.error(error)

    return handle


async def _generate(
    request: web.Request, engine: Engine, kind: Kind, ask: Ask, stored: StoredModel, arrival: float
) -> web.StreamResponse:
    token_count = ask.max_tokens or engine.settings.default_output_tokens
    done_reason = "length" if ask.max_tokens else "stop"
    async with engine.slot(stored, arrival, ask.keep_alive) as timing:
        outcome = Outcome(ask, timing, token_count, done_reason)
        if not ask.stream:
            await engine.generate(timing, token_count, None)
            return web.json_response(kind.document(outcome), dumps=dumps)
        response = web.StreamResponse(headers={"Content-Type": kind.content_type})
        await response.prepare(request)  # sends the headers
        next_chunk = kind.token_chunk(ask)
        closing: Callable[[], bytes] | None = None
        write = response.write
        last = token_count - 1

        async def emit(index: int) -> None:
            nonlocal closing
            if index < last:
                await write(next_chunk())
                if index == 1:
                    # Encoded once the stream is under way: concurrent streams tend to start and
                    # end together, and their first and last tokens (which TTFT and E2E measure)
                    # should not wait behind this.
                    closing = kind.closing(outcome)
                return
            if closing is None:
                closing = kind.closing(outcome)
            # The last token, the closing object and the end of the body go out in one write:
            # the client reads the last token at once, not after a few more of our syscalls.
            await response.write_eof(next_chunk() + closing())

        try:
            await engine.generate(timing, token_count, emit)
            if token_count == 0:
                await response.write_eof(kind.closing(outcome)())
        except ConnectionResetError:
            pass  # the client went away; its slot is released on the way out
        return response


# What the last native object says that depends on when it is written.
TIMED_FIELDS = (
    "created_at",
    "total_duration",
    "load_duration",
    "prompt_eval_duration",
    "eval_duration",
)
LATER_TIMES: dict[str, Any] = dict.fromkeys(TIMED_FIELDS, LATER)


def _times(timing: Timing) -> dict[str, Any]:
    return {"created_at": created_at(), **timing.durations_ns()}


def _durations(outcome: Outcome, times: dict[str, Any]) -> dict[str, Any]:
    return {
        "total_duration": times["total_duration"],
        "load_duration": times["load_duration"],
        "prompt_eval_count": outcome.ask.prompt_tokens,
        "prompt_eval_duration": times["prompt_eval_duration"],
        "eval_count": outcome.token_count,
        "eval_duration": times["eval_duration"],
    }


def _native_prefix(ask: Ask) -> bytes:
    return f'{{"model":{dumps(ask.model)},"created_at":"'.encode()


class NativeKind(Kind):
    """Ollama's own API (/api/generate, /api/chat): the options, keep_alive and the NDJSON."""

    def parse(self, body: dict[str, Any]) -> Ask:
        model, name = _model_field(body)
        words, empty = self._prompt(body)
        options = body.get("options") if isinstance(body.get("options"), dict) else {}
        return Ask(
            model=model,
            name=name,
            prompt_tokens=max(1, words),
            max_tokens=_positive_int(options.get("num_predict")),
            stream=body.get("stream") is not False,
            keep_alive=_keep_alive_field(body),
            load_only=empty,
        )

    @abstractmethod
    def _prompt(self, body: dict[str, Any]) -> tuple[int, bool]:
        """The prompt's length in words, and whether there is none (a load-only request)."""

    @abstractmethod
    def _final(self, outcome: Outcome, text: str, times: dict[str, Any]) -> dict[str, Any]:
        """The last object of the answer, with `text` as its content and TIMED_FIELDS `times`."""

    def closing(self, outcome: Outcome) -> Callable[[], bytes]:
        fill = json_filler(self._final(outcome, "", LATER_TIMES))
        timing = outcome.timing
        return lambda: fill(_times(timing))

    def document(self, outcome: Outcome) -> dict[str, Any]:
        return self._final(outcome, TOKEN_TEXT * outcome.token_count, _times(outcome.timing))


class NativeGenerate(NativeKind):
    def _prompt(self, body: dict[str, Any]) -> tuple[int, bool]:
        prompt, system = body.get("prompt") or "", body.get("system") or ""
        context = body.get("context") if isinstance(body.get("context"), list) else []
        words = count_words(system) + count_words(prompt) + len(context)
        return words, not prompt and not system and not context

    def token_chunk(self, ask: Ask) -> Callable[[], bytes]:
        prefix = _native_prefix(ask)
        suffix = f'","response":{dumps(TOKEN_TEXT)},"done":false}}\n'.encode()
        return lambda: prefix + created_at().encode() + suffix

    def _final(self, outcome: Outcome, text: str, times: dict[str, Any]) -> dict[str, Any]:
        ask = outcome.ask
        # The conversation so far as token ids, to pass back as "context" in a follow-up.
        context = list(range(1, ask.prompt_tokens + outcome.token_count + 1))
        return {
            "model": ask.model,
            "created_at": times["created_at"],
            "response": text,
            "done": True,
            "done_reason": outcome.done_reason,
            "context": context,
            **_durations(outcome, times),
        }

    def load_only(self, ask: Ask, unloaded: bool) -> dict[str, Any]:
        return {
            "model": ask.model,
            "created_at": created_at(),
            "response": "",
            "done": True,
            "done_reason": "unload" if unloaded else "load",
        }


class NativeChat(NativeKind):
    def _prompt(self, body: dict[str, Any]) -> tuple[int, bool]:
        messages = body.get("messages") or []
        if not isinstance(messages, list):
            raise ApiError(400, "messages must be a list")
        words = sum(count_words(m.get("content")) for m in messages if isinstance(m, dict))
        return words, not messages

    def token_chunk(self, ask: Ask) -> Callable[[], bytes]:
        prefix = _native_prefix(ask)
        message = dumps({"role": "assistant", "content": TOKEN_TEXT})
        suffix = f'","message":{message},"done":false}}\n'.encode()
        return lambda: prefix + created_at().encode() + suffix

    def _final(self, outcome: Outcome, text: str, times: dict[str, Any]) -> dict[str, Any]:
        return {
            "model": outcome.ask.model,
            "created_at": times["created_at"],
            "message": {"role": "assistant", "content": text},
            "done_reason": outcome.done_reason,
            "done": True,
            **_durations(outcome, times),
        }

    def load_only(self, ask: Ask, unloaded: bool) -> dict[str, Any]:
        return {
            "model": ask.model,
            "created_at": created_at(),
            "message": {"role": "assistant", "content": ""},
            "done_reason": "unload" if unloaded else "load",
            "done": True,
        }


class OpenAIKind(Kind):
    content_type = "text/event-stream"
    id_prefix = ""
    object_streamed = ""
    object_whole = ""

    def error(self, error: ApiError) -> web.Response:
        return _openai_error(error)

    def _common_parse(self, body: dict[str, Any], prompt_words: int) -> Ask:
        model, name = _model_field(body)
        stream_options = body.get("stream_options")
        include_usage = isinstance(stream_options, dict) and bool(
            stream_options.get("include_usage")
        )
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        return Ask(
            model=model,
            name=name,
            prompt_tokens=max(1, prompt_words),
            max_tokens=_positive_int(max_tokens),
            stream=body.get("stream") is True,
            include_usage=include_usage,
            # Ollama numbers its completions with a small random integer.
            openai_id=f"{self.id_prefix}-{random.randint(0, 999)}",
            openai_created=int(time.time()),
        )

    def _header(self, ask: Ask, streamed: bool) -> dict[str, Any]:
        return {
            "id": ask.openai_id,
            "object": self.object_streamed if streamed else self.object_whole,
            "created": ask.openai_created,
            "model": ask.model,
            "system_fingerprint": "fp_ollama",
        }

    @abstractmethod
    def _choice(self, text: str, finish_reason: str | None, streamed: bool) -> dict[str, Any]: ...

    def token_chunk(self, ask: Ask) -> Callable[[], bytes]:
        chunk = {**self._header(ask, True), "choices": [self._choice(TOKEN_TEXT, None, True)]}
        encoded = f"data: {dumps(chunk)}\n\n".encode()  # identical for every token
        return lambda: encoded

    def closing(self, outcome: Outcome) -> Callable[[], bytes]:
        header = self._header(outcome.ask, True)
        last = {**header, "choices": [self._choice("", outcome.done_reason, True)]}
        events = [last]
        if outcome.ask.include_usage:
            events.append({**header, "choices": [], "usage": self._usage(outcome)})
        encoded = "".join(f"data: {dumps(event)}\n\n" for event in events).encode() + (
            b"data: [DONE]\n\n"
        )  # nothing in it depends on the timing
        return lambda: encoded

    def document(self, outcome: Outcome) -> dict[str, Any]:
        text = TOKEN_TEXT * outcome.token_count
        return {
            **self._header(outcome.ask, False),
            "choices": [self._choice(text, outcome.done_reason, False)],
            "usage": self._usage(outcome),
        }

    @staticmethod
    def _usage(outcome: Outcome) -> dict[str, int]:
        prompt, completion = outcome.ask.prompt_tokens, outcome.token_count
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }


class OpenAIChat(OpenAIKind):
    id_prefix = "chatcmpl"
    object_streamed = "chat.completion.chunk"
    object_whole = "chat.completion"

    def parse(self, body: dict[str, Any]) -> Ask:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "[] is too short - 'messages'")
        words = sum(count_words(m.get("content")) for m in messages if isinstance(m, dict))
        return self._common_parse(body, words)

    def _choice(self, text: str, finish_reason: str | None, streamed: bool) -> dict[str, Any]:
        message = {"role": "assistant", "content": text}
        key = "delta" if streamed else "message"
        return {"index": 0, key: message, "finish_reason": finish_reason}


class OpenAICompletion(OpenAIKind):
    id_prefix = "cmpl"
    object_streamed = "text_completion"
    object_whole = "text_completion"

    def parse(self, body: dict[str, Any]) -> Ask:
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise ApiError(400, "invalid type for 'prompt' field")
        return self._common_parse(body, count_words(prompt))

    def _choice(self, text: str, finish_reason: str | None, streamed: bool) -> dict[str, Any]:
        return {"text": text, "index": 0, "finish_reason": finish_reason}
