#!/usr/bin/python
# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
# The work is done by the action plugin of the same name (plugins/action/recipes.py).

DOCUMENTATION = r"""
---
module: recipes
short_description: Load, validate and normalize a session's three recipes
description:
  - Reads the service, client and Prometheus recipes on the controller, checks every key and
    type, and sets the facts C(session_service), C(session_client) and C(session_prometheus).
  - Accepts the current format and the seed-era one (top-level C(service:) or C(client:) with
    C(resources), C(environment), C(ports), C(health_check), C(enable_cadvisor),
    C(cadvisor_port), C(parameters), C(target_service), C(monitoring_targets)).
  - Every value is checked (types, ranges, units, lengths; the client's parameters by the
    benchmark client's own rules, which need the C(hpcansible) Python package on the
    controller; C(extra_scrape_configs) key by key and with C(promtool check config
    --syntax-only) where promtool is on the PATH). Any problem fails the task with one line
    naming the file and the key, before anything is submitted.
  - "Recipe values are data. Everything returned is marked unsafe, so that Ansible never
    evaluates C({{ }}), C({% %}) or C({# #}) in a recipe, at any depth, keys included. Set the
    role variables from RV(role_vars) (with M(ansible.builtin.set_fact)), never by writing them
    to a file and reading it back with M(ansible.builtin.include_vars), which trusts what it
    reads as templates."
  - Seed-era keys that ask for commands (C(build_commands), C(script), a container's
    C(docker_source)) are never run; each gets a note.
version_added: 0.1.0
author: hpcansible contributors
options:
  service:
    description: Path of the service recipe; relative paths are taken from the current folder.
    type: path
  client:
    description: Path of the client recipe.
    type: path
  prometheus:
    description: Path of the Prometheus recipe.
    type: path
  defaults:
    description: Paths used for the recipes not given, keyed C(service), C(client), C(prometheus).
    type: dict
    default: {}
  site_programs:
    description:
      - Programs the site profile provides (for example C(ollama), C(prometheus)); a recipe's
        install or container settings for them are not used, with a note.
    type: list
    elements: str
    default: []
  partition_map:
    description: The site's names for the recipes' partitions (recipe name to site name).
    type: dict
    default: {}
  qos_map:
    description: The site's names for the recipes' QoS (recipe name to site name).
    type: dict
    default: {}
  qos_names:
    description: The QoS names the site has; a recipe's QoS outside them fails.
    type: list
    elements: str
  set_facts:
    description:
      - Also set the role variables as facts, in the same task, their C(*_port) values shifted
        by the smallest offset that clears every port the jobs of other sessions use (as the
        P(hpcansible.hpc.slurm_jobs#inventory) plugin's host vars show them). RV(role_vars)
        is then shifted too.
      - As host facts they outrank the inventory's and the roles' defaults, and yield to play,
        role and include variables and to extra vars.
    type: bool
    default: false
attributes:
  action:
    support: full
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Resolve the recipes
  hpcansible.hpc.recipes:
    service: recipes/ollama/service.yml
    client: recipes/ollama/client.yml
    prometheus: recipes/ollama/prometheus.yml
  register: resolved

- name: Use the role variables the recipes set (values stay data)
  ansible.builtin.set_fact:
    "{{ item.key }}": "{{ item.value }}"
  loop: "{{ resolved.role_vars | dict2items }}"
  loop_control:
    label: "{{ item.key }}"
"""

RETURN = r"""
recipes:
  description: The three normalized recipes, keyed by kind.
  returned: success
  type: dict
role_vars:
  description: The role variables the recipes set (for example C(ollama_service_model)).
  returned: success
  type: dict
notes:
  description:
    - What the recipes ask for that is not used or not run here, and why; a job time limit
      shorter than the client's planned load.
  returned: success
  type: list
  elements: str
ansible_facts:
  description: C(session_service), C(session_client) and C(session_prometheus); with O(set_facts) the role variables too.
  returned: success
  type: dict
"""
