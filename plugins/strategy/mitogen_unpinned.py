# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Mitogen's linear strategy without its CPU pinning (issue 9).

Mitogen pins its connection multiplexer to CPU 0 and, on a machine with fewer than four CPUs,
the strategy process, every task's worker and every command a module starts to the same one
other CPU. A session's controller-side tasks (set_fact, assert, includes, the session record)
then wait on each other: measured on a 2-CPU login node, a set_fact inside a session took
56 ms pinned and 24 ms unpinned, and a whole seed Redis session spent about 2 s less in
Ansible. Module execution stays Mitogen's (one Python per host, no copy per task), which is
what makes it pay here. The kernel places the processes instead.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: mitogen_unpinned
short_description: Mitogen's linear strategy, without pinning processes to CPUs
description:
  - The C(mitogen_linear) strategy of the C(mitogen) package (C(ansible_mitogen)), with its
    CPU affinity policy replaced by one that leaves placement to the kernel.
  - C(python -m hpcansible run) and the other playbook commands use it where C(mitogen) is
    installed; C(HPCANSIBLE_ANSIBLE_STRATEGY=linear) turns it off.
author: hpcansible contributors
requirements: [mitogen]
"""

import ansible_mitogen.affinity
import ansible_mitogen.loaders
import ansible_mitogen.strategy

# Replaced before the strategy starts its multiplexer: Mitogen looks the policy up at each
# use (ansible_mitogen.affinity.policy.assign_*), and the base Policy does nothing.
ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()

Base = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Base):
    """Mitogen's linear strategy; only the CPU placement differs."""
