# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Action plugin behind hpcansible.hpc.recipes: runs on the controller, where the recipe files are.

Recipe values are data: everything this plugin returns is wrapped unsafe, so that Ansible never
evaluates a `{{ }}`, `{% %}` or `{# #}` in a recipe as a template, at any depth, keys included.
The client's parameters are checked by the benchmark client's own rules (module_utils/
recipe_client.py imports hpcansible_jobs.bench for them, and fails in one line without it).
"""

from __future__ import annotations

from pathlib import Path

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.unsafe_proxy import wrap_var
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_loaders import (
    LOADERS,
    check_pairing,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_overrides import (
    reduce_sweeps,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_role_vars import role_vars
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_schema import RecipeError
from ansible_collections.hpcansible.hpc.plugins.module_utils.session_ports import (
    avoid_ports,
    used_ports,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.site_names import (
    check_site,
    parse_partitions,
)

KINDS = ("service", "client", "prometheus")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    # partition_map, qos_map, qos_names: the site's names (issue 10, module_utils/site_names.py)
    _VALID_ARGS = frozenset(
        (*KINDS, "defaults", "site_programs", "partition_map", "qos_map", "qos_names", "set_facts")
    )

    def _site_partitions(self) -> tuple[list[str] | None, list[str]]:
        """The partitions SLURM lists where the session's commands run (None if unknown)."""
        done = self._low_level_execute_command("sinfo -h -o %R")
        if done.get("rc") != 0:
            reason = (done.get("stderr") or done.get("stdout") or "").strip().splitlines()
            return None, [f"partitions not checked: sinfo failed ({(reason or ['?'])[-1]})"]
        return parse_partitions(done.get("stdout", "")), []

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        defaults = args.get("defaults") or {}
        set_facts = boolean(args.get("set_facts", False))
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
            reduced = reduce_sweeps(recipes["client"])  # HPCANSIBLE_SWEEP_POINTS (issue 10)
            check_pairing(recipes["service"], recipes["client"], recipes["prometheus"])
            partitions, unchecked = self._site_partitions()
            site = {
                "hpcansible_partition_map": args.get("partition_map"),
                "hpcansible_qos_map": args.get("qos_map"),
                "hpcansible_qos_names": args.get("qos_names"),
            }
            site_notes = reduced + check_site(recipes, site, partitions)
            variables, notes = role_vars(recipes, args.get("site_programs") or [])
            if set_facts:
                # clear of the ports the other sessions' jobs use (the slurm_jobs inventory)
                variables = avoid_ports(
                    variables, used_ports((task_vars or {}).get("hostvars") or {})
                )
        except (RecipeError, ValueError) as error:
            result.update(failed=True, msg=wrap_var(str(error)))
            return result
        notes = [note for recipe in recipes.values() for note in recipe["warnings"]] + notes
        notes += site_notes + unchecked
        result.update(
            changed=False,
            recipes=wrap_var(recipes),
            role_vars=wrap_var(variables),
            notes=wrap_var(notes),
            ansible_facts=wrap_var(
                {f"session_{kind}": recipe for kind, recipe in recipes.items()}
                | (variables if set_facts else {})
            ),
        )
        return result
