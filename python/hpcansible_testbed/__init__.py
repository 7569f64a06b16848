"""The testbed part of hpcansible: what a one-machine SLURM cluster needs and a real cluster
does not. Its Ansible side is the collection's `testbed` role and `testbed_network` module;
its Python side is here:

- `standins/`: cAdvisor and Ollama stand-ins (they cannot be installed here), which accept
  the real flags and serve the real HTTP API and metric names; the testbed role installs
  their launchers into the testbed's own bin folder, not as the product's console scripts;
- `command.py`: `python -m hpcansible testbed up|down|status`.
"""
