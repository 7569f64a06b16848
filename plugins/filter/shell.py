# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Quoting for job scripts: recipe values reach a shell only through these filters."""

from __future__ import annotations

import re
import shlex

DOCUMENTATION = r"""
---
name: shell_path
short_description: Quote a path for a job script, expanding only environment variables
description:
  - Seed-era recipes write paths such as C($HOME/containers/x.sif) or C(${SCRATCH}/results).
    This filter keeps C($NAME) and C(${NAME}) as variable references (double-quoted, so no word
    splitting or globbing) and single-quotes everything else, so C($(cmd)), backquotes, C(;),
    C(*) and spaces stay literal.
  - A leading C(~/) is read as C($HOME/).
version_added: 0.1.0
author: hpcansible contributors
positional: _input
options:
  _input:
    description: The path.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Quote an image path
  ansible.builtin.debug:
    msg: "{{ '$HOME/containers/ollama.sif' | hpcansible.hpc.shell_path }}"
  # "${HOME}"/containers/ollama.sif
"""

RETURN = r"""
_value:
  description: A shell word that expands to the path.
  type: str
"""

VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def shell_path(value: object) -> str:
    text = str(value)
    if text.startswith("~/"):
        text = "$HOME/" + text[2:]
    words, position = [], 0
    for match in VARIABLE.finditer(text):
        if match.start() > position:
            words.append(shlex.quote(text[position : match.start()]))
        words.append('"${%s}"' % (match.group(1) or match.group(2)))
        position = match.end()
    if position < len(text) or not words:
        words.append(shlex.quote(text[position:]))
    return "".join(words)


def shell_words(values: object) -> str:
    """A list of arguments as one safely quoted command line."""
    if isinstance(values, str):
        values = [values]
    return " ".join(shlex.quote(str(value)) for value in values)  # type: ignore[union-attr]


class FilterModule:
    def filters(self) -> dict:
        return {"shell_path": shell_path, "shell_words": shell_words}
