"""A calibrated streaming LLM server: ground truth for the bench client's TTFT/TPOT/E2E.

    python tests/bench/calibrated_server.py --port 18600 --ttft-ms 50 --tpot-ms 10

It speaks Ollama's /api/generate and /api/chat (NDJSON) and OpenAI's /v1/chat/completions
and /v1/completions (SSE), and sends token k of a request at exactly
arrival + TTFT + k * TPOT, where arrival is when the request's last byte was read. The
number of tokens is the request's num_predict / max_tokens.

Why not an asyncio server: uvloop and asyncio timers fire on a millisecond grid, which
alone would use up the 1 ms accuracy budget. Here each connection has a thread that
sleeps with time.sleep (a high-resolution timer) and writes with plain sockets; the GIL
is free while threads sleep, so 16 streams stay on time. The final Ollama object reports
what the server actually did (prompt_eval_duration = arrival to first token,
total_duration = arrival to last token, in ns), so a run can also be checked against
the server's own clock.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time

OLLAMA_HEADERS = b"Content-Type: application/x-ndjson\r\n"
SSE_HEADERS = b"Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
PROMPT_TOKENS = 16


def _chunk(payload: bytes) -> bytes:
    """One HTTP/1.1 chunk (chunked transfer encoding)."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _read_request(conn: socket.socket, buffer: bytearray) -> tuple[bytes, bytes] | None:
    """(path, body) of the next request on a keep-alive connection, or None at EOF."""
    while b"\r\n\r\n" not in buffer:
        data = conn.recv(65536)
        if not data:
            return None
        buffer += data
    head, _, _ = bytes(buffer).partition(b"\r\n\r\n")
    del buffer[: len(head) + 4]
    lines = head.split(b"\r\n")
    path = lines[0].split(b" ")[1]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(buffer) < length:
        data = conn.recv(65536)
        if not data:
            return None
        buffer += data
    body = bytes(buffer[:length])
    del buffer[:length]
    return path, body


def _token_events(path: bytes, tokens: int) -> tuple[bytes, list[bytes], bytes]:
    """(extra headers, one payload per token, closing payload) for the API shape."""
    if path.startswith(b"/api/"):
        chat = path.startswith(b"/api/chat")
        line = (
            {"message": {"role": "assistant", "content": " tok"}} if chat else {"response": " tok"}
        )
        token = json.dumps({**line, "done": False}).encode() + b"\n"
        return OLLAMA_HEADERS, [token] * tokens, b""
    chat = path.startswith(b"/v1/chat")
    choice = {"delta": {"content": " tok"}} if chat else {"text": " tok"}
    token = b"data: " + json.dumps({"choices": [{"index": 0, **choice}]}).encode() + b"\n\n"
    usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": tokens}
    closing = (
        b"data: "
        + json.dumps({"choices": [{"index": 0, "finish_reason": "length"}]}).encode()
        + b"\n\ndata: "
        + json.dumps({"choices": [], "usage": usage}).encode()
        + b"\n\ndata: [DONE]\n\n"
    )
    return SSE_HEADERS, [token] * tokens, closing


def _serve_connection(conn: socket.socket, ttft_s: float, tpot_s: float) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = bytearray()
    with conn:
        while True:
            request = _read_request(conn, buffer)
            if request is None:
                return
            arrived = time.perf_counter()
            path, body = request
            ask = json.loads(body or b"{}")
            tokens = int(ask.get("options", {}).get("num_predict") or ask.get("max_tokens") or 1)
            headers, events, closing = _token_events(path, tokens)
            conn.sendall(b"HTTP/1.1 200 OK\r\n" + headers + b"Transfer-Encoding: chunked\r\n\r\n")
            first = last = arrived
            for k, event in enumerate(events):
                delay = arrived + ttft_s + k * tpot_s - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                last = time.perf_counter()
                if k == 0:
                    first = last
                conn.sendall(_chunk(event))
            if path.startswith(b"/api/"):
                closing = (
                    json.dumps(
                        {
                            "done": True,
                            "done_reason": "length",
                            "response": "",
                            "message": {"role": "assistant", "content": ""},
                            "eval_count": tokens,
                            "prompt_eval_count": PROMPT_TOKENS,
                            "prompt_eval_duration": int((first - arrived) * 1e9),
                            "eval_duration": int((last - first) * 1e9),
                            "total_duration": int((last - arrived) * 1e9),
                            "load_duration": 0,
                        }
                    ).encode()
                    + b"\n"
                )
            conn.sendall(_chunk(closing) + b"0\r\n\r\n")


def serve(host: str, port: int, ttft_s: float, tpot_s: float) -> None:
    listener = socket.create_server((host, port), backlog=1024, reuse_port=False)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_serve_connection, args=(conn, ttft_s, tpot_s), daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--tpot-ms", type=float, default=10.0)
    args = parser.parse_args()
    # a short switch interval lets a thread whose sleep ended take the GIL promptly
    sys.setswitchinterval(0.0005)
    serve(args.host, args.port, args.ttft_ms / 1e3, args.tpot_ms / 1e3)


if __name__ == "__main__":
    main()
