"""Environment settings shared by the Ollama stand-in's server and its client subcommands."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hpcansible_testbed.standins._gocompat import parse_go_duration

# The version the stand-in reports. Clients gate features on it, so it is a real release number;
# the stand-in is marked by the X-Hpcansible-Standin header and its log instead.
DEFAULT_VERSION = "0.6.5"
DEFAULT_PORT = "11434"
DEFAULT_KEEP_ALIVE_SECONDS = 300.0


@dataclass(frozen=True)
class OllamaHost:
    scheme: str
    host: str  # "" means every interface, as in Go's ":11434"
    port: int

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        # Like the real CLI, a client aimed at "every interface" talks to the local machine.
        host = self.host if self.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"{self.scheme}://{host}:{self.port}"


def parse_ollama_host(value: str | None) -> OllamaHost:
    """OLLAMA_HOST as Ollama's envconfig.Host() reads it.

    "" -> 127.0.0.1:11434, "0.0.0.0" -> 0.0.0.0:11434, ":8080" -> all interfaces, "node1:9000",
    "http://host" -> port 80, "https://host" -> port 443.
    """
    text = (value or "").strip().strip("\"'")
    default_port = DEFAULT_PORT
    scheme, separator, hostport = text.partition("://")
    if not separator:
        scheme, hostport = "http", text
    elif scheme == "http":
        default_port = "80"
    elif scheme == "https":
        default_port = "443"
    hostport = hostport.split("/", 1)[0]
    host, port = _split_host_port(hostport)
    if port is None:
        host, port = (hostport.strip("[]") or "127.0.0.1"), default_port
    if not port.isdigit() or int(port) > 65535:
        port = default_port
    return OllamaHost(scheme, host, int(port))


def _split_host_port(hostport: str) -> tuple[str, str | None]:
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        return (host, rest[1:]) if rest.startswith(":") else (host, None)
    if hostport.count(":") == 1:
        host, port = hostport.split(":")
        return host, port
    return hostport, None


def parse_keep_alive(value: object) -> float:
    """Seconds a model stays loaded; negative means forever (math.inf).

    Accepts what Ollama accepts: a number of seconds or a Go duration ("5m", "-1", "0").
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid keep_alive {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_go_duration(value)
        except ValueError:
            seconds = float(int(value))  # OLLAMA_KEEP_ALIVE also takes plain seconds
    else:
        raise ValueError(f"invalid keep_alive {value!r}")
    return math.inf if seconds < 0 else seconds


@dataclass(frozen=True)
class ServerSettings:
    host: OllamaHost
    models_dir: Path
    num_parallel: int
    max_queue: int
    keep_alive_seconds: float
    ttft_seconds: float
    tpot_seconds: float
    default_output_tokens: int
    load_seconds: float
    version: str

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], warn: Callable[[str], None] = lambda _: None
    ) -> ServerSettings:
        reader = _EnvReader(environ, warn)
        return cls(
            host=parse_ollama_host(environ.get("OLLAMA_HOST")),
            models_dir=models_dir(environ),
            num_parallel=reader.integer("OLLAMA_NUM_PARALLEL", 4, minimum=1),
            max_queue=reader.integer("OLLAMA_MAX_QUEUE", 512, minimum=1),
            keep_alive_seconds=reader.keep_alive("OLLAMA_KEEP_ALIVE"),
            ttft_seconds=reader.milliseconds("OLLAMA_STANDIN_TTFT_MS", 50.0),
            tpot_seconds=reader.milliseconds("OLLAMA_STANDIN_TPOT_MS", 10.0),
            default_output_tokens=reader.integer("OLLAMA_STANDIN_TOKENS", 32, minimum=0),
            load_seconds=reader.milliseconds("OLLAMA_STANDIN_LOAD_MS", 0.0),
            version=environ.get("OLLAMA_STANDIN_VERSION") or DEFAULT_VERSION,
        )


def models_dir(environ: Mapping[str, str]) -> Path:
    configured = environ.get("OLLAMA_MODELS", "").strip()
    if configured:
        return Path(configured).expanduser()
    home = environ.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".ollama" / "models"


@dataclass
class _EnvReader:
    """Like Ollama: a malformed value is reported and the default used, never fatal."""

    environ: Mapping[str, str]
    warn: Callable[[str], None]

    def _raw(self, name: str) -> str | None:
        value = self.environ.get(name, "").strip().strip("\"'")
        return value or None

    def integer(self, name: str, default: int, minimum: int) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            self.warn(f"invalid setting, ignoring {name}={raw!r}, using {default}")
            return default
        return value

    def milliseconds(self, name: str, default_ms: float) -> float:
        raw = self._raw(name)
        if raw is None:
            return default_ms / 1000
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not (value >= 0 and math.isfinite(value)):
            self.warn(f"invalid setting, ignoring {name}={raw!r}, using {default_ms:g}")
            return default_ms / 1000
        return value / 1000

    def keep_alive(self, name: str) -> float:
        raw = self._raw(name)
        if raw is None:
            return DEFAULT_KEEP_ALIVE_SECONDS
        try:
            return parse_keep_alive(raw)
        except ValueError:
            self.warn(f"invalid setting, ignoring {name}={raw!r}, using 5m0s")
            return DEFAULT_KEEP_ALIVE_SECONDS
