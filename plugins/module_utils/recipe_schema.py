# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""The schema language of recipes: each field is a checker(value, where) -> normalized value.

A checker either returns the value in the form the rest of the code uses (memory as sbatch
writes it, durations as Prometheus writes them) or raises RecipeError with one line that names
the file and the key (`where`). Nothing here knows what a recipe holds; recipe_loaders does.
Nothing here imports Ansible: the `recipes` action plugin and the CLI share it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any


class RecipeError(ValueError):
    """A recipe problem, already phrased as `file: key: what is wrong`."""


SAFE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,39}$")
MEMORY = re.compile(r"^(\d+)\s*([KMGT]?)B?$", re.IGNORECASE)
DURATION = re.compile(r"^\d+(ms|s|m|h|d|w|y)$")

Checker = Callable[[Any, str], Any]


def type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def text(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RecipeError(f"{where}: expected a string, got {type_name(value)}")
    return str(value)


def integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        raise RecipeError(f"{where}: expected an integer, got {value!r}")
    return value


def port(value: Any, where: str) -> int:
    number = integer(value, where)
    if not 1 <= number <= 65535:
        raise RecipeError(f"{where}: {number} is not a TCP port (1-65535)")
    return number


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise RecipeError(f"{where}: expected true or false, got {value!r}")
    return value


def number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecipeError(f"{where}: expected a number, got {value!r}")
    return float(value)


def anything(value: Any, where: str) -> Any:
    return value


def memory(value: Any, where: str) -> str:
    """sbatch wants 16G; seed-era recipes say 16GB."""
    match = MEMORY.match(text(value, where).strip())
    if not match:
        raise RecipeError(f"{where}: expected a memory size such as 4G or 512M, got {value!r}")
    return f"{match.group(1)}{match.group(2).upper()}"


def duration(value: Any, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value}s"
    if not DURATION.match(text(value, where)):
        raise RecipeError(f"{where}: expected a duration such as 15s, 5m or 1d, got {value!r}")
    return str(value)


def safe_name(value: Any, where: str) -> str:
    name = text(value, where)
    if not SAFE_NAME.match(name):
        raise RecipeError(
            f"{where}: {name!r} must start with a letter and hold only letters, digits, '.', "
            "'_' or '-' (at most 40)"
        )
    return name


def one_of(*choices: str) -> Checker:
    def check(value: Any, where: str) -> str:
        choice = text(value, where)
        if choice not in choices:
            raise RecipeError(f"{where}: {choice!r} is not one of {', '.join(choices)}")
        return choice

    return check


def list_of(item: Checker) -> Checker:
    def check(value: Any, where: str) -> list:
        if isinstance(value, str | int) and not isinstance(value, bool) and item is not anything:
            value = [value]
        if not isinstance(value, list):
            raise RecipeError(f"{where}: expected a list, got {type_name(value)}")
        return [item(element, f"{where}[{index}]") for index, element in enumerate(value)]

    return check


def string_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise RecipeError(f"{where}: expected a mapping of names to values, got {type_name(value)}")
    result = {}
    for key, item in value.items():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(key)):
            raise RecipeError(f"{where}.{key}: not a valid environment variable name")
        if isinstance(item, bool):
            item = "1" if item else "0"
        result[str(key)] = text(item, f"{where}.{key}")
    return result


def any_mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise RecipeError(f"{where}: expected a mapping, got {type_name(value)}")
    return value


def mapping(schema: dict[str, Checker]) -> Checker:
    def check(value: Any, where: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a mapping, got {type_name(value)}")
        result = {}
        for key, item in value.items():
            if key not in schema:
                hint = difflib.get_close_matches(str(key), schema, n=1)
                suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise RecipeError(f"{where}.{key}: unknown key{suggestion}")
            if item is not None:
                result[key] = schema[key](item, f"{where}.{key}")
        return result

    return check
