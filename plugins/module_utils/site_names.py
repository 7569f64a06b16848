# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Partition and QoS names: a recipe's names mapped to the site's, and checked against the site.

A recipe written for one cluster names that cluster's partitions and QoS (MeluXina: partition
gpu, qos default). A site profile maps them to its own (`hpcansible_partition_map: {gpu:
gpu-a100}`, `hpcansible_qos_map`), so that the recipe runs unchanged; each mapping is a note.

Then every partition and QoS the recipes name is checked before anything is submitted: a
partition against the ones SLURM lists (`sinfo -h -o %R`), a QoS against the site profile's
`hpcansible_qos_names` (SLURM without accounting accepts any QoS name, so only the profile can
say which exist). A name the site lacks is one line naming the file and the key.

Nothing here imports Ansible: the `recipes` action plugin calls it, tests call it directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_schema import (
    RecipeError,
    shown,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_yaml import read_recipe

KINDS = ("service", "client", "prometheus")
# sbatch's option and the site profile's map and list of each name.
NAMES = {
    "partition": {"map": "hpcansible_partition_map"},
    "qos": {"map": "hpcansible_qos_map", "names": "hpcansible_qos_names"},
}


def recipe_key(recipe: Mapping[str, Any], kind: str) -> str:
    """The top-level key a recipe file uses (a seed-era Prometheus recipe says `service`)."""
    if kind != "prometheus":
        return kind
    try:
        return read_recipe(Path(recipe["source"]), ("prometheus", "service"))[0]
    except (RecipeError, OSError, KeyError):
        return kind


def map_names(
    recipes: Mapping[str, dict], partition_map: Mapping[str, str], qos_map: Mapping[str, str]
) -> list[str]:
    """Replace the recipes' partition and QoS names by the site's (in place); the notes."""
    maps = {"partition": dict(partition_map or {}), "qos": dict(qos_map or {})}
    notes = []
    for kind in KINDS:
        recipe = recipes.get(kind)
        if not recipe:
            continue
        resources = recipe.get("resources", {})
        for name, mapping in maps.items():
            given = resources.get(name)
            if given is not None and str(given) in mapping:
                resources[name] = str(mapping[str(given)])
                notes.append(
                    f"{recipe['source']}: {recipe_key(recipe, kind)}.resources.{name}: "
                    f"{given!r} is {resources[name]!r} at this site ({NAMES[name]['map']})"
                )
    return notes


def parse_partitions(sinfo_output: str) -> list[str]:
    """Partition names from `sinfo -h -o %R` (one a line, duplicates possible)."""
    names: list[str] = []
    for line in sinfo_output.splitlines():
        name = line.strip().rstrip("*")
        if name and name not in names:
            names.append(name)
    return names


def check_names(
    recipes: Mapping[str, dict],
    partitions: Sequence[str] | None,
    qos_names: Sequence[str] | None,
) -> None:
    """RecipeError (one line) for the first partition or QoS that the site lacks. None for a
    list means it is unknown here (then that name is not checked)."""
    known = {"partition": partitions, "qos": qos_names}
    for kind in KINDS:
        recipe = recipes.get(kind)
        if not recipe:
            continue
        for name, names in known.items():
            given = recipe.get("resources", {}).get(name)
            if given is None or names is None or str(given) in names:
                continue
            where = f"{recipe['source']}: {recipe_key(recipe, kind)}.resources.{name}"
            if name == "partition":
                raise RecipeError(
                    f"{where}: {shown(given)} is not a partition of this site (sinfo lists "
                    f"{', '.join(names) or 'none'}); map it with hpcansible_partition_map"
                )
            raise RecipeError(
                f"{where}: {shown(given)} is not a QoS of this site (the site profile's "
                f"hpcansible_qos_names: {', '.join(names) or 'none'}); map it with "
                "hpcansible_qos_map"
            )


def check_site(
    recipes: Mapping[str, dict], settings: Mapping[str, Any], partitions: Sequence[str] | None
) -> list[str]:
    """Map the recipes' names with the site profile's settings (its hpcansible_partition_map,
    hpcansible_qos_map, hpcansible_qos_names), then check them; the notes of the mapping."""
    notes = map_names(
        recipes,
        settings.get("hpcansible_partition_map") or {},
        settings.get("hpcansible_qos_map") or {},
    )
    check_names(recipes, partitions, settings.get("hpcansible_qos_names"))
    return notes


def profile_settings(profile: Path) -> dict[str, Any]:
    """The three settings from a site profile's group_vars (all.yml, all/*.yml), as written."""
    group_vars = Path(profile) / "group_vars"
    found: dict[str, Any] = {}
    for path in [group_vars / "all.yml", *sorted((group_vars / "all").glob("*.yml"))]:
        try:
            settings = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        for name in ("hpcansible_partition_map", "hpcansible_qos_map", "hpcansible_qos_names"):
            if isinstance(settings, dict) and name in settings:
                found[name] = settings[name]
    return found
