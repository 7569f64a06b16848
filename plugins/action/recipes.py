# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Action plugin behind hpcansible.hpc.recipes: runs on the controller, where the recipe files are.

Recipe values are data: everything this plugin returns is wrapped unsafe, so that Ansible never
evaluates a `{{ }}`, `{% %}` or `{# #}` in a recipe as a template, at any depth, keys included.
The client's parameters are checked by the benchmark client's own rules (module_utils/
recipe_client.py imports hpcansible.bench for them, and fails in one line without it).
"""

from __future__ import annotations

from pathlib import Path

from ansible.plugins.action import ActionBase
from ansible.utils.unsafe_proxy import wrap_var
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_loaders import (
    LOADERS,
    check_pairing,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_role_vars import role_vars
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_schema import RecipeError

KINDS = ("service", "client", "prometheus")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset((*KINDS, "defaults", "site_programs"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        defaults = args.get("defaults") or {}
        recipes = {}
        try:
            for kind in KINDS:
                path = args.get(kind) or defaults.get(kind)
                if not path:
                    raise RecipeError(
                        f"no {kind} recipe given and no default for it in the site profile"
                    )
                path = Path(str(path)).expanduser()
                if not path.is_absolute():
                    path = Path.cwd() / path
                recipes[kind] = LOADERS[kind](path)
            check_pairing(recipes["service"], recipes["client"], recipes["prometheus"])
            variables, notes = role_vars(recipes, args.get("site_programs") or [])
        except RecipeError as error:
            result.update(failed=True, msg=wrap_var(str(error)))
            return result
        notes = [note for recipe in recipes.values() for note in recipe["warnings"]] + notes
        result.update(
            changed=False,
            recipes=wrap_var(recipes),
            role_vars=wrap_var(variables),
            notes=wrap_var(notes),
            ansible_facts=wrap_var({f"session_{kind}": recipe for kind, recipe in recipes.items()}),
        )
        return result
