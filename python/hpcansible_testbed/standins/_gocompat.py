"""Go standard-library behaviour the stand-ins must reproduce for their real counterparts.

cAdvisor parses its command line with Go's `flag` package and Ollama reads durations with
`time.ParseDuration`; scripts written against the real programs depend on the exact accepted
syntax, defaults and error messages, so this module copies them rather than using argparse.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NoReturn

_NANOSECONDS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_TERM = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]+)")


def parse_go_duration(text: str) -> float:
    """Seconds for a Go duration string ("1s", "500ms", "1m30s", "-1.5h", "0").

    Raises ValueError with Go's wording for anything `time.ParseDuration` rejects.
    """
    original = text
    sign = -1 if text.startswith("-") else 1
    text = text.removeprefix("-") if sign < 0 else text.removeprefix("+")
    if text == "0":
        return 0.0
    if not text:
        raise ValueError(f'time: invalid duration "{original}"')
    if re.fullmatch(r"[\d.]+", text):
        raise ValueError(f'time: missing unit in duration "{original}"')
    nanoseconds = 0.0
    position = 0
    while position < len(text):
        match = _DURATION_TERM.match(text, position)
        if match is None or not (match.group(1) or match.group(2)):
            raise ValueError(f'time: invalid duration "{original}"')
        whole, fraction, unit = match.groups()
        if unit not in _NANOSECONDS_PER_UNIT:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{original}"')
        number = float(f"{whole or 0}.{fraction or 0}")
        nanoseconds += number * _NANOSECONDS_PER_UNIT[unit]
        position = match.end()
    return sign * nanoseconds / 1e9


def format_go_duration(seconds: float) -> str:
    """Go's `time.Duration.String()`: 1s, 1m0s, 1h0m0s, 500ms, 0s."""
    nanoseconds = round(seconds * 1e9)
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    nanoseconds = abs(nanoseconds)
    if nanoseconds < 1_000:
        return f"{sign}{nanoseconds}ns"
    if nanoseconds < 1_000_000:
        return f"{sign}{_trim(nanoseconds / 1e3)}µs"
    if nanoseconds < 1_000_000_000:
        return f"{sign}{_trim(nanoseconds / 1e6)}ms"
    hours, rest = divmod(nanoseconds, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = f"{_trim(rest / 1e9)}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def _trim(number: float) -> str:
    return f"{number:.9f}".rstrip("0").rstrip(".")


_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_go_bool(text: str) -> bool:
    """`strconv.ParseBool`."""
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def parse_go_int(text: str) -> int:
    """`strconv.ParseInt(text, 0, 64)`: decimal, 0x.., 0o.., 0b.., or a leading 0 for octal."""
    body = text.lstrip("+-")
    if len(body) > 1 and body[0] == "0" and body[1].isdigit():
        return int(text.replace("0", "0o", 1), 0)
    return int(text, 0)


def format_go_float(value: float) -> str:
    """`strconv.FormatFloat(value, 'g', -1, 64)`, which Prometheus' Go client uses for samples.

    cAdvisor prints e.g. `machine_memory_bytes 8.327286784e+09`; matching it keeps diffs against
    a real cAdvisor's output readable.
    """
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    decimal_point = exponent + len(digits)  # value = 0.<digits> * 10**decimal_point
    prefix = "-" if sign else ""
    exponent10 = decimal_point - 1
    if exponent10 < -4 or exponent10 >= 6:  # Go's 'g' with shortest precision
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exponent10 < 0 else '+'}{abs(exponent10):02d}"
    if decimal_point <= 0:
        return f"{prefix}0.{'0' * -decimal_point}{digits}"
    if decimal_point >= len(digits):
        return prefix + digits + "0" * (decimal_point - len(digits))
    return f"{prefix}{digits[:decimal_point]}.{digits[decimal_point:]}"


class FlagError(Exception):
    """A command-line error, worded as Go's flag package words it."""


class HelpRequested(Exception):
    """-h or -help was given."""


@dataclass
class GoFlag:
    name: str
    default: Any
    usage: str
    type_name: str  # shown in usage ("int", "string", "duration", "value"); "" for booleans
    parse: Callable[[str], Any]
    default_text: str

    @property
    def is_bool(self) -> bool:
        return self.type_name == ""


@dataclass
class GoFlagSet:
    """A subset of Go's `flag.FlagSet` with `ExitOnError` behaviour."""

    program: str
    banner: str = ""  # printed before "Usage of <program>:"
    flags: dict[str, GoFlag] = field(default_factory=dict)

    def bool(self, name: str, default: bool, usage: str) -> None:
        self._add(GoFlag(name, default, usage, "", parse_go_bool, str(default).lower()))

    def string(self, name: str, default: str, usage: str) -> None:
        self._add(GoFlag(name, default, usage, "string", str, f'"{default}"' if default else ""))

    def int(self, name: str, default: int, usage: str) -> None:
        self._add(GoFlag(name, default, usage, "int", parse_go_int, str(default)))

    def duration(self, name: str, default_seconds: float, usage: str) -> None:
        default_text = format_go_duration(default_seconds) if default_seconds else ""
        self._add(GoFlag(name, default_seconds, usage, "duration", parse_go_duration, default_text))

    def value(
        self, name: str, default: Any, usage: str, parse: Callable[[str], Any], default_text: str
    ) -> None:
        """A `flag.Var`: parse() turns the text into the value or raises ValueError."""
        self._add(GoFlag(name, default, usage, "value", parse, default_text))

    def _add(self, flag: GoFlag) -> None:
        self.flags[flag.name] = flag

    def usage(self) -> str:
        lines = [self.banner] if self.banner else []
        lines.append(f"Usage of {self.program}:")
        for name in sorted(self.flags):
            flag = self.flags[name]
            type_name, usage = _unquote_usage(flag)
            header = f"  -{name}" + (f" {type_name}" if type_name else "")
            text = usage + (f" (default {flag.default_text})" if _shows_default(flag) else "")
            lines.append(f"{header}\n    \t{text}")
        return "\n".join(lines) + "\n"

    def parse(self, argv: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
        """Values for every flag (defaults filled in) and the arguments after the flags."""
        values = {name: flag.default for name, flag in self.flags.items()}
        remaining = list(argv)
        while remaining:
            argument = remaining[0]
            if len(argument) < 2 or argument[0] != "-":
                break
            remaining.pop(0)
            if argument == "--":
                break
            name = argument[2:] if argument.startswith("--") else argument[1:]
            if not name or name[0] in "-=":
                raise FlagError(f"bad flag syntax: {argument}")
            name, has_value, text = name.partition("=")
            self._set_one(values, name, text if has_value else None, remaining)
        return values, remaining

    def _set_one(
        self, values: dict[str, Any], name: str, text: str | None, remaining: list[str]
    ) -> None:
        flag = self.flags.get(name)
        if flag is None:
            if name in ("h", "help"):
                raise HelpRequested
            raise FlagError(f"flag provided but not defined: -{name}")
        if flag.is_bool:
            try:
                values[name] = parse_go_bool("true" if text is None else text)
            except ValueError:
                raise FlagError(
                    f'invalid boolean value "{text}" for -{name}: parse error'
                ) from None
            return
        if text is None:
            if not remaining:
                raise FlagError(f"flag needs an argument: -{name}")
            text = remaining.pop(0)
        try:
            values[name] = flag.parse(text)
        except ValueError as error:
            reason = str(error) if flag.type_name == "value" else "parse error"
            raise FlagError(f'invalid value "{text}" for flag -{name}: {reason}') from None

    def parse_or_exit(self, argv: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
        """Like Go's ExitOnError: usage errors exit 2 after printing usage; -h exits 0."""
        try:
            return self.parse(argv)
        except HelpRequested:
            self._exit_with_usage(0)
        except FlagError as error:
            print(error, file=sys.stderr)
            self._exit_with_usage(2)

    def _exit_with_usage(self, code: int) -> NoReturn:
        sys.stderr.write(self.usage())
        raise SystemExit(code)


def _unquote_usage(flag: GoFlag) -> tuple[str, str]:
    """Go's flag.UnquoteUsage: a `quoted` word in the usage names the flag's argument."""
    match = re.search(r"`([^`]*)`", flag.usage)
    if match is None:
        return flag.type_name, flag.usage
    usage = flag.usage[: match.start()] + match.group(1) + flag.usage[match.end() :]
    return match.group(1), usage


def _shows_default(flag: GoFlag) -> bool:
    # Go omits zero values (false, "", 0) from the usage text.
    return bool(flag.default_text) and flag.default_text not in ("false", "0")


_second_cache: dict[tuple[int, bool], str] = {}


def format_rfc3339_nano(unix_ns: int, *, utc: bool = True) -> str:
    """Go's `time.Format(time.RFC3339Nano)`: 2024-07-22T20:31:03.137283436Z (zeros trimmed).

    Called once per streamed token, so the per-second part is cached.
    """
    seconds, nanoseconds = divmod(unix_ns, 1_000_000_000)
    key = (seconds, utc)
    prefix = _second_cache.get(key)
    if prefix is None:
        if len(_second_cache) > 64:
            _second_cache.clear()
        prefix = _second_cache[key] = _format_second(seconds, utc)
    date_time, zone = prefix.split("|")
    fraction = f".{nanoseconds:09d}".rstrip("0") if nanoseconds else ""
    return f"{date_time}{fraction}{zone}"


def _format_second(seconds: int, utc: bool) -> str:
    moment = time.gmtime(seconds) if utc else time.localtime(seconds)
    offset = moment.tm_gmtoff or 0
    if offset == 0:
        zone = "Z"
    else:
        hours, minutes = divmod(abs(offset) // 60, 60)
        zone = f"{'-' if offset < 0 else '+'}{hours:02d}:{minutes:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", moment) + "|" + zone
