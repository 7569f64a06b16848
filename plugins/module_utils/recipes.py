# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Recipes, by job: the schema language (recipe_schema), the loaders with the seed-era format
(recipe_loaders) and the map to role variables (recipe_role_vars).

This module only re-exports their public names for code that imports `recipes`.
"""

from __future__ import annotations

from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_loaders import (
    CLIENT_METRICS_PORT,
    EXPORTERS,
    LOADERS,
    SERVICE_TYPES,
    check_pairing,
    load_client,
    load_prometheus,
    load_service,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_role_vars import (
    install_vars,
    role_vars,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_schema import RecipeError

__all__ = [
    "CLIENT_METRICS_PORT",
    "EXPORTERS",
    "LOADERS",
    "SERVICE_TYPES",
    "RecipeError",
    "check_pairing",
    "install_vars",
    "load_client",
    "load_prometheus",
    "load_service",
    "role_vars",
]
