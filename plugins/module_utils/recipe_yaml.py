# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Reading a recipe file: whatever the file holds, the answer is a document or one line.

Binary files, UTF-16, folders, unreadable files, duplicate keys, alias bombs and very deep
nesting each get a one-line RecipeError naming the file (and the line where YAML knows it).
Integers follow YAML 1.2: `time: 1:30:00` stays the text SLURM reads, not YAML 1.1's base-60
number 5400.
"""

from __future__ import annotations

import codecs
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_schema import (
    RecipeError,
    key_name,
    shown,
    type_name,
)

# A recipe is a few kilobytes; larger files are refused before they are parsed.
MAX_FILE_BYTES = 8 * 1024 * 1024
# Values after aliases are expanded, and levels of nesting: far beyond any real recipe, far
# below what makes a walk over the document (or Ansible's copy of it) slow or overflow.
MAX_VALUES = 100_000
MAX_DEPTH = 64
BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}
MERGE_TAG = "tag:yaml.org,2002:merge"


class RecipeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, with duplicate keys refused, nesting bounded and YAML 1.2 numbers."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested more than {MAX_DEPTH} levels deep",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                if key in first_line:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {shown(key, 40)} (first at line {first_line[key]})",
                        key_node.start_mark,
                    )
                first_line[key] = line
        return super().construct_mapping(node, deep)


# PyYAML's patterns for numbers without their base-60 alternatives.
YAML12_NUMBERS = {
    "tag:yaml.org,2002:int": re.compile(
        r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0[0-7_]+
        |[-+]?(?:0|[1-9][0-9_]*)
        |[-+]?0x[0-9a-fA-F_]+)$""",
        re.X,
    ),
    "tag:yaml.org,2002:float": re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
        |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
}


def _yaml12_resolvers() -> dict:
    """SafeLoader's implicit resolvers with YAML12_NUMBERS for integers and floats."""
    return {
        first: [(tag, YAML12_NUMBERS.get(tag, regexp)) for tag, regexp in entries]
        for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


RecipeLoader.yaml_implicit_resolvers = _yaml12_resolvers()


def _children(node: Any) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_expansion(root: Any, path: Path) -> None:
    """Refuse documents whose aliases expand too far, nest too deep or refer to themselves.

    Iterative and memoized: linear in the nodes YAML composed, whatever the aliases make of them.
    """
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth) once expanded
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            parts = [measured[id(child)] for child in _children(node)]
            values = 1 + sum(count for count, _ in parts)
            depth = 1 + max((level for _, level in parts), default=0)
            measured[key] = (values, depth)
            line = f" line {node.start_mark.line + 1}:"
            if values > MAX_VALUES:
                raise RecipeError(
                    f"{path}:{line} expands to more than {MAX_VALUES} values (an alias bomb?)"
                )
            if depth > MAX_DEPTH:
                raise RecipeError(f"{path}:{line} nested more than {MAX_DEPTH} levels deep")
            continue
        if key in measured:
            continue
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise RecipeError(
                    f"{path}: line {child.start_mark.line + 1}: an alias refers to a value "
                    "that contains it"
                )
            if id(child) not in measured:
                stack.append((child, False))


def read_text(path: Path) -> str:
    """The file as text, or one line saying why it is not a recipe file."""
    try:
        status = path.stat()
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such file") from None
    except PermissionError:
        raise RecipeError(f"{path}: not readable (permission denied)") from None
    except OSError as error:
        raise RecipeError(f"{path}: cannot read it ({error.strerror or error})") from None
    if stat.S_ISDIR(status.st_mode):
        raise RecipeError(f"{path}: is a folder, not a recipe file")
    if not stat.S_ISREG(status.st_mode):
        raise RecipeError(f"{path}: not a regular file")
    if status.st_size > MAX_FILE_BYTES:
        raise RecipeError(
            f"{path}: {status.st_size} bytes; a recipe file is at most {MAX_FILE_BYTES} bytes"
        )
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except PermissionError:
        raise RecipeError(f"{path}: not readable (permission denied)") from None
    except OSError as error:
        raise RecipeError(f"{path}: cannot read it ({error.strerror or error})") from None
    if len(data) > MAX_FILE_BYTES:
        raise RecipeError(f"{path}: more than {MAX_FILE_BYTES} bytes; not a recipe file")
    for bom, encoding in BOMS.items():
        if data.startswith(bom):
            raise RecipeError(f"{path}: {encoding} text; save the recipe as UTF-8")
    if b"\x00" in data:
        raise RecipeError(f"{path}: a binary file (NUL bytes), not a YAML recipe")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise RecipeError(
            f"{path}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})"
        ) from None


def read_yaml(path: Path) -> Any:
    """The one YAML document of a recipe file."""
    text = read_text(path)
    loader = None
    try:
        loader = RecipeLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        check_expansion(node, path)
        return loader.construct_document(node)
    except yaml.reader.ReaderError as error:
        raise RecipeError(
            f"{path}: character #x{error.character:04x} at position {error.position}: "
            f"{error.reason}"
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}:" if mark else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise RecipeError(f"{path}:{line} {problem}") from None
    except RecipeError:
        raise
    except (ValueError, OverflowError, RecursionError) as error:
        # A constructor's own failure: an integer of 5000 digits, a date such as 2024-13-45.
        reason = str(error) if len(str(error)) <= 80 else f"{str(error)[:75]}..."
        raise RecipeError(f"{path}: a value cannot be read ({reason})") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_recipe(path: Path, allowed: tuple[str, ...]) -> tuple[str, dict]:
    """A recipe file's one top-level key (one of `allowed`) and the mapping under it."""
    document = read_yaml(path)
    if not isinstance(document, dict) or not document:
        raise RecipeError(f"{path}: expected a mapping with a top-level '{allowed[0]}:' key")
    unknown = [key for key in document if key not in allowed]
    if unknown or len(document) != 1:
        keys = ", ".join(key_name(key) for key in unknown or document)
        raise RecipeError(
            f"{path}: {keys}: expected exactly one top-level key, one of {', '.join(allowed)}"
        )
    key = next(iter(document))
    body = document[key]
    if not isinstance(body, dict):
        raise RecipeError(f"{path}: {key}: expected a mapping, got {type_name(body)}")
    return key, body
