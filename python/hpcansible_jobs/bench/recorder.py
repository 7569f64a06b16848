"""Per-request records, kept in preallocated columns.

The hot path writes integers into lists by index (no object per request). Timestamps are
`time.perf_counter_ns()` values (CLOCK_MONOTONIC on Linux, shared by all processes on a
machine); 0 means "did not happen". They become epoch or run-relative times only when
written out, through the Clock reference taken at start.
"""

from __future__ import annotations

import csv
import json
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NOT_SET = 0
UNKNOWN_TOKENS = -1

# Error classes that summaries count (here, not in apis/, so that a summary or a recipe check
# need not import aiohttp); HTTP statuses are added as http_<status>.
CONNECT = "connect"
TIMEOUT = "timeout"
BROKEN_STREAM = "broken_stream"
SERVER_ERROR = "server_error"  # an error object inside a stream
EMPTY_RESPONSE = "empty_response"  # a complete LLM answer without one content token
OTHER = "other"
CANCELLED = "cancelled"  # still in flight when the run stopped
# Where a request's token count came from (Recorder.input_source / output_source codes):
# the server's own count in the stream (OpenAI usage, Ollama eval_count), the server's
# tokenizer asked before the run (llama-cpp-python's /extras/tokenize, see apis/openai.py),
# or one token per content chunk.
TOKEN_SOURCES = (None, "server", "tokenize", "chunks")
SOURCE_SERVER, SOURCE_TOKENIZE, SOURCE_CHUNKS = 1, 2, 3


@dataclass(frozen=True)
class Clock:
    """A (wall clock, monotonic clock) pair read together, to convert monotonic to epoch."""

    epoch_ns: int
    mono_ns: int

    @classmethod
    def now(cls) -> Clock:
        return cls(time.time_ns(), time.perf_counter_ns())

    def to_epoch_ns(self, mono_ns: int) -> int:
        return self.epoch_ns + (mono_ns - self.mono_ns)


class Recorder:
    """Columns of per-request timestamps and results, indexed by request number.

    Numbers live in array("q") columns (8 bytes each, no int object kept per value):
    about 100 bytes per request in all (see tests/bench/bench_memory.py for the measured
    peak, which includes the end-of-run aggregation).
    """

    COLUMNS_NS = ("scheduled", "dispatched", "sent", "first_byte", "first_token", "end", "done")

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = 0
        self.size = 0  # request slots handed out
        self.scheduled = array("q")  # intended send time (closed loop: previous request's end)
        self.dispatched = array("q")  # the request's task started (client scheduling lag)
        self.sent = array("q")  # actual send (see summary.DEFINITIONS["actual_send"])
        self.first_byte = array("q")  # response headers received
        self.first_token = array("q")  # first non-empty content chunk (LLM APIs)
        self.end = array("q")  # last content chunk (LLM) or complete response
        self.done = array("q")  # response fully read or failed
        self.status = array("q")  # HTTP status (0 for Redis or when none arrived)
        self.input_tokens = array("q")  # server-reported; UNKNOWN_TOKENS when not
        self.output_tokens = array("q")
        self.output_asked = array("q")  # output tokens asked for (0: not an LLM request)
        self.input_source = array("b")  # TOKEN_SOURCES index
        self.output_source = array("b")
        self.error: list[str | None] = []  # error class, None on success
        self.chunks: list[array | None] = []  # content chunk arrival times (LLM APIs)
        self.detail: list[dict[str, Any] | None] = []  # server timings, Redis command...
        self.completed = array("q")  # request indices in completion order
        self.grow(capacity)

    def grow(self, capacity: int) -> None:
        extra = capacity - self.capacity
        if extra <= 0:
            return
        zeros = array("q", bytes(8 * extra))
        for name in self.COLUMNS_NS:
            getattr(self, name).extend(zeros)
        self.status.extend(zeros)
        self.output_asked.extend(zeros)
        no_source = array("b", bytes(extra))
        self.input_source.extend(no_source)
        self.output_source.extend(no_source)
        unknown = array("q", [UNKNOWN_TOKENS]) * extra
        self.input_tokens.extend(unknown)
        self.output_tokens.extend(unknown)
        self.error.extend([None] * extra)
        self.chunks.extend([None] * extra)
        self.detail.extend([None] * extra)
        self.capacity = capacity

    def allocate(self) -> int:
        """Hand out the next request index, growing the columns when full."""
        index = self.size
        if index >= self.capacity:
            self.grow(max(1024, self.capacity * 2))
        self.size = index + 1
        return index

    def indices(self) -> range:
        return range(self.size)


def _ms(value_ns: int, origin_ns: int) -> float | None:
    return None if value_ns == NOT_SET else round((value_ns - origin_ns) / 1e6, 4)


def request_record(
    rec: Recorder, i: int, origin_ns: int, warmup: bool, worker: int
) -> dict[str, Any]:
    """One request as a flat dict: times in ms from the run start, durations in ms."""
    sent = rec.sent[i]
    chunks = rec.chunks[i]
    record: dict[str, Any] = {
        "index": i,
        "worker": worker,
        "warmup": warmup,
        "scheduled_ms": _ms(rec.scheduled[i], origin_ns),
        "sent_ms": _ms(sent, origin_ns),
        "first_byte_ms": _ms(rec.first_byte[i], origin_ns),
        "first_token_ms": _ms(rec.first_token[i], origin_ns),
        "end_ms": _ms(rec.end[i], origin_ns),
        "done_ms": _ms(rec.done[i], origin_ns),
        "status": rec.status[i] or None,
        "error": rec.error[i],
        "input_tokens": None if rec.input_tokens[i] < 0 else rec.input_tokens[i],
        "output_tokens": None if rec.output_tokens[i] < 0 else rec.output_tokens[i],
        "output_tokens_asked": rec.output_asked[i] or None,
        "input_tokens_source": TOKEN_SOURCES[rec.input_source[i]],
        "output_tokens_source": TOKEN_SOURCES[rec.output_source[i]],
        "chunks_ms": None if chunks is None else [round((c - sent) / 1e6, 4) for c in chunks],
    }
    if rec.detail[i]:
        record.update(rec.detail[i])
    return record


def write_records(
    path: Path,
    fmt: str,
    rec: Recorder,
    origin_ns: int,
    is_warmup: list[bool],
    worker: int,
) -> Path | None:
    """Write requests.jsonl or requests.csv (CSV leaves out the chunk list)."""
    if fmt == "none":
        return None
    if fmt == "jsonl":
        target = path / "requests.jsonl"
        with target.open("w", encoding="utf-8") as out:
            for i in rec.indices():
                record = request_record(rec, i, origin_ns, is_warmup[i], worker)
                out.write(json.dumps(record, separators=(",", ":")))
                out.write("\n")
        return target
    target = path / "requests.csv"
    rows = (request_record(rec, i, origin_ns, is_warmup[i], worker) for i in rec.indices())
    first = next(rows, None)
    with target.open("w", encoding="utf-8", newline="") as out:
        if first is None:
            return target
        first.pop("chunks_ms")
        detail_keys = sorted({k for d in rec.detail[: rec.size] if d for k in d} - set(first))
        writer = csv.DictWriter(out, fieldnames=[*first, *detail_keys], extrasaction="ignore")
        writer.writeheader()
        writer.writerow(first)
        writer.writerows(rows)
    return target
