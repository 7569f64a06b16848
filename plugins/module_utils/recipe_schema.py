# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""The schema language of recipes: each field is a checker(value, where) -> normalized value.

A checker either returns the value in the form the rest of the code uses (memory as sbatch
writes it, durations as Prometheus writes them) or raises RecipeError with one line that names
the file and the key (`where`). Every checker bounds what it accepts: types, ranges, units and
lengths, so that nothing wrong reaches a job. Nothing here knows what a recipe holds;
recipe_loaders does. Nothing here imports Ansible: the `recipes` action plugin and the CLI
share it.

`mapping` and `list_of` keep what they check in the attributes `fields` and `item`, so that a
test can walk a whole schema (tests/integration/test_recipes_are_data.py does).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from typing import Any


class RecipeError(ValueError):
    """A recipe problem, already phrased as `file: key: what is wrong`; always one line."""

    def __init__(self, message: str) -> None:
        message = one_line(message)
        if len(message) > MAX_MESSAGE:  # a 1 MB value quoted by a checker that did not cut it
            message = f"{message[: MAX_MESSAGE - 20]}... ({len(message)} characters)"
        super().__init__(message)


Checker = Callable[[Any, str], Any]

# Longer than any path (PATH_MAX is 4096) or name a recipe needs: a 1 MB "model" is a mistake.
MAX_TEXT = 4096
# Free text such as a description, which never reaches a job.
MAX_FREE_TEXT = 65536
MAX_ITEMS = 1000
MAX_MESSAGE = 1000
# sbatch, SLURM and Prometheus take 64-bit integers at most.
MAX_INTEGER = 2**63 - 1
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
SAFE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,39}$")
ENVIRONMENT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MEMORY = re.compile(r"^(\d{1,12})\s*([KMGT]?)B?$", re.IGNORECASE)
MEMORY_UNITS_MB = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024**2}
# Prometheus durations: 1h30m, 15s, 500ms; units in this order, each at most once.
DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
DURATION_UNITS_S = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
# SLURM's --time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS.
SLURM_TIME = re.compile(
    r"^(?:(?P<days>\d{1,4})-(?P<dh>\d{1,2})(?::(?P<dm>\d{1,2})(?::(?P<ds>\d{1,2}))?)?"
    r"|(?P<h>\d{1,4}):(?P<m>\d{1,2}):(?P<s>\d{1,2})"
    r"|(?P<mm>\d{1,6}):(?P<ss>\d{1,2})"
    r"|(?P<minutes>\d{1,7}))$"
)
MAX_SLURM_TIME_S = 365 * 86400
HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*$")
IPV6 = re.compile(r"^\[[0-9A-Fa-f:.]{2,45}\]$")


def one_line(message: str) -> str:
    """Messages are one line: control characters (a newline in a key, say) are escaped."""
    return CONTROL.sub(lambda match: repr(match.group())[1:-1], message)


def shown(value: Any, limit: int = 60) -> str:
    """A value as an error message quotes it: repr, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


def key_name(key: Any) -> str:
    """A key as a path segment: plain keys as they are, others quoted and cut."""
    return key if isinstance(key, str) and re.match(r"^[\w.-]{1,64}$", key) else shown(key, 40)


def type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


# --- scalars --------------------------------------------------------------------------------


def _string(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RecipeError(f"{where}: expected a string, got {type_name(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RecipeError(f"{where}: expected a string, got {value!r}")
    return str(value)


def text_of(max_length: int = MAX_TEXT, single_line: bool = True) -> Checker:
    """A string (numbers read as their text) of at most `max_length` characters."""

    def check(value: Any, where: str) -> str:
        string = _string(value, where)
        if len(string) > max_length:
            raise RecipeError(
                f"{where}: {len(string)} characters, at most {max_length} are accepted"
            )
        bad = CONTROL.search(string) if single_line else re.search(r"[\x00\x7f]", string)
        if bad:
            raise RecipeError(
                f"{where}: control character {bad.group()!r} at position {bad.start()}; "
                "write the value on one line"
            )
        return string

    return check


text = text_of()
free_text = text_of(MAX_FREE_TEXT, single_line=False)


def matching(pattern: str, what: str, max_length: int = 256) -> Checker:
    """A string that matches `pattern` in full; `what` says what is expected."""
    compiled = re.compile(pattern)
    check_text = text_of(max_length)

    def check(value: Any, where: str) -> str:
        string = check_text(value, where).strip()
        if not compiled.fullmatch(string):
            raise RecipeError(f"{where}: expected {what}, got {shown(value)}")
        return string

    return check


def integer_in(minimum: int = -MAX_INTEGER, maximum: int = MAX_INTEGER) -> Checker:
    """An integer (or a string of digits) from `minimum` to `maximum`."""

    def check(value: Any, where: str) -> int:
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,19}\s*", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(f"{where}: expected an integer, got {shown(value)}")
        if not minimum <= value <= maximum:
            raise RecipeError(
                f"{where}: {shown(value, 24)} is out of range ({minimum} to {maximum})"
            )
        return value

    return check


integer = integer_in()
positive = integer_in(1)
non_negative = integer_in(0)


def number_in(minimum: float, maximum: float) -> Checker:
    """A finite number from `minimum` to `maximum`."""

    def check(value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RecipeError(f"{where}: expected a number, got {shown(value)}")
        if not math.isfinite(value) or not minimum <= value <= maximum:
            raise RecipeError(
                f"{where}: {shown(value, 24)} is out of range ({minimum:g} to {maximum:g})"
            )
        return float(value)

    return check


def port(value: Any, where: str) -> int:
    number = integer(value, where)
    if not 1 <= number <= 65535:
        raise RecipeError(f"{where}: {number} is not a TCP port (1-65535)")
    return number


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise RecipeError(f"{where}: expected true or false, got {shown(value)}")
    return value


def anything(value: Any, where: str) -> Any:
    return value


def memory_mb(size: str) -> float:
    """Megabytes of a size that `memory` accepted (16G -> 16384)."""
    match = MEMORY.match(size)
    assert match, size
    return int(match.group(1)) * MEMORY_UNITS_MB[match.group(2).upper()]


def memory_in(max_mb: float = 1024**3) -> Checker:
    """sbatch wants 16G; seed-era recipes say 16GB. 0 is SLURM's "all of the node's memory"."""

    def check(value: Any, where: str) -> str:
        if isinstance(value, bool) or (isinstance(value, int) and not 0 <= value <= 10**12):
            raise RecipeError(f"{where}: expected a memory size such as 4G or 512M, got {value!r}")
        match = MEMORY.match(text(value, where).strip())
        if not match:
            raise RecipeError(
                f"{where}: expected a memory size such as 4G or 512M, got {shown(value)}"
            )
        size = f"{match.group(1)}{match.group(2).upper()}"
        if memory_mb(size) > max_mb:
            raise RecipeError(f"{where}: {size} is more than {max_mb / 1024**2:g}T")
        return size

    return check


memory = memory_in()


def duration_seconds(value: str) -> float:
    """Seconds of a duration that `duration` accepted (1h30m -> 5400)."""
    match = DURATION.match(value)
    assert match and value, value
    return sum(
        int(part) * unit
        for part, unit in zip(match.groups(), DURATION_UNITS_S, strict=True)
        if part
    )


def duration_in(minimum_s: float = 0.001, maximum_s: float = 100 * 365 * 86400) -> Checker:
    """A Prometheus duration (15s, 5m, 1h30m, 1d; an integer is seconds) within bounds."""

    def check(value: Any, where: str) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = f"{value}s" if value >= 0 else str(value)
        string = text(value, where).strip()
        if not string or not DURATION.match(string):
            raise RecipeError(
                f"{where}: expected a duration such as 15s, 5m, 1h30m or 1d, got {shown(value)}"
            )
        seconds = duration_seconds(string)
        if not minimum_s <= seconds <= maximum_s:
            raise RecipeError(
                f"{where}: {string} is out of range ({seconds_text(minimum_s)} to "
                f"{seconds_text(maximum_s)})"
            )
        return string

    return check


duration = duration_in()


def seconds_text(seconds: float) -> str:
    """A duration as a person reads it: 90 -> 1m30s, 0.5 -> 500ms."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    parts, rest = [], int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


def slurm_time_seconds(value: str) -> int:
    """Seconds of a SLURM time limit that `slurm_time` accepted ("1-00:00" -> 86400)."""
    match = SLURM_TIME.match(value)
    assert match, value
    part = {name: int(number) for name, number in match.groupdict().items() if number}
    if "minutes" in part:
        return part["minutes"] * 60
    if "mm" in part:
        return part["mm"] * 60 + part["ss"]
    if "h" in part:
        return part["h"] * 3600 + part["m"] * 60 + part["s"]
    return part["days"] * 86400 + part["dh"] * 3600 + part.get("dm", 0) * 60 + part.get("ds", 0)


def slurm_time(value: Any, where: str) -> str:
    """sbatch --time in SLURM's own formats, more than 0 and at most 365 days."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)  # minutes, as sbatch reads a bare number
    string = text(value, where).strip()
    match = SLURM_TIME.match(string)
    if not match:
        raise RecipeError(
            f"{where}: expected a SLURM time limit (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or "
            f"D-HH:MM:SS), got {shown(value)}"
        )
    part = {name: int(number) for name, number in match.groupdict().items() if number}
    for name, limit in (("dh", 23), ("m", 59), ("dm", 59), ("s", 59), ("ds", 59), ("ss", 59)):
        if part.get(name, 0) > limit:
            raise RecipeError(f"{where}: {string!r}: {part[name]} is more than {limit}")
    seconds = slurm_time_seconds(string)
    if not 0 < seconds <= MAX_SLURM_TIME_S:
        raise RecipeError(f"{where}: {string!r} must be more than 0 and at most 365 days")
    return string


def hostname(value: Any, where: str) -> str:
    """A host name, an IPv4 address or a bracketed IPv6 address."""
    string = text(value, where).strip()
    if not HOSTNAME.match(string) and not IPV6.match(string):
        raise RecipeError(f"{where}: expected a host name or address, got {shown(value)}")
    return string


def safe_name(value: Any, where: str) -> str:
    name = text(value, where)
    if not SAFE_NAME.match(name):
        raise RecipeError(
            f"{where}: {shown(name)} must start with a letter and hold only letters, digits, "
            "'.', '_' or '-' (at most 40)"
        )
    return name


def one_of(*choices: str) -> Checker:
    def check(value: Any, where: str) -> str:
        choice = text(value, where)
        if choice not in choices:
            raise RecipeError(f"{where}: {shown(choice)} is not one of {', '.join(choices)}")
        return choice

    check.choices = choices
    return check


# --- containers -----------------------------------------------------------------------------


def list_of(
    item: Checker, max_items: int = MAX_ITEMS, wrap_scalar: bool = True, min_items: int = 0
) -> Checker:
    """A list of `item`s; a single scalar is read as a list of one where `wrap_scalar`."""

    def check(value: Any, where: str) -> list:
        if wrap_scalar and isinstance(value, str | int) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise RecipeError(f"{where}: expected a list, got {type_name(value)}")
        if len(value) > max_items:
            raise RecipeError(f"{where}: {len(value)} entries, at most {max_items} are accepted")
        if len(value) < min_items:
            raise RecipeError(f"{where}: at least {min_items} entries are needed")
        return [item(element, f"{where}[{index}]") for index, element in enumerate(value)]

    check.item = item
    return check


def _mapping_of(value: Any, where: str, what: str = "a mapping") -> dict:
    if not isinstance(value, dict):
        raise RecipeError(f"{where}: expected {what}, got {type_name(value)}")
    if len(value) > MAX_ITEMS:
        raise RecipeError(f"{where}: {len(value)} keys, at most {MAX_ITEMS} are accepted")
    return value


def string_map(value: Any, where: str) -> dict[str, str]:
    """Environment variables: names as the shell takes them, values as one-line strings."""
    result = {}
    for key, item in _mapping_of(value, where, "a mapping of names to values").items():
        if not isinstance(key, str) or not ENVIRONMENT_NAME.match(key):
            raise RecipeError(f"{where}.{key_name(key)}: not a valid environment variable name")
        if isinstance(item, bool):
            item = "1" if item else "0"
        result[key] = text(item, f"{where}.{key}")
    return result


def any_mapping(value: Any, where: str) -> dict:
    return _mapping_of(value, where)


def mapping(fields: dict[str, Checker], required: tuple[str, ...] = ()) -> Checker:
    """A mapping with the keys of `fields`, each checked by its checker; null means unset."""

    def check(value: Any, where: str) -> dict:
        if value is None:
            value = {}
        result = {}
        for key, item in _mapping_of(value, where).items():
            if key not in fields:
                hint = difflib.get_close_matches(str(key), fields, n=1)
                suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise RecipeError(f"{where}.{key_name(key)}: unknown key{suggestion}")
            if item is not None:
                result[key] = fields[key](item, f"{where}.{key}")
        for key in required:
            if key not in result:
                raise RecipeError(f"{where}.{key}: missing")
        return result

    check.fields = fields
    check.required = required
    return check
