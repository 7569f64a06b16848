# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Overrides of a recipe from the environment of the command that starts the session.

HPCANSIBLE_SWEEP_POINTS=N keeps the first N values of each sweep list of the client recipe
(client_counts, data_sizes, pipeline_depths, concurrency, rate, ...): a parametric recipe then
runs a reduced sweep, unchanged on disk (a smoke test, or the integration tests). Each
reduced list is a note. Unset or empty: the recipe runs as written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_schema import RecipeError

SWEEP_POINTS_ENV = "HPCANSIBLE_SWEEP_POINTS"


def sweep_points(environ: Mapping[str, str] | None = None) -> int | None:
    """N from HPCANSIBLE_SWEEP_POINTS, or None when unset."""
    raw = (os.environ if environ is None else environ).get(SWEEP_POINTS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise RecipeError(f"{SWEEP_POINTS_ENV}={raw!r}: expected a number of points, 1 or more")
    return int(raw)


def reduce_sweeps(client: dict, environ: Mapping[str, str] | None = None) -> list[str]:
    """Cut the client recipe's sweep lists to HPCANSIBLE_SWEEP_POINTS values (in place)."""
    points = sweep_points(environ)
    if points is None:
        return []
    notes = []
    parameters = client["parameters"]
    for name, values in list(parameters.items()):
        if isinstance(values, list) and len(values) > points:
            kept = values[:points]
            parameters[name] = kept[0] if len(kept) == 1 else kept
            notes.append(
                f"{client['source']}: client.parameters.{name}: {len(values)} values, the "
                f"first {points} run ({SWEEP_POINTS_ENV}={points})"
            )
    return notes
