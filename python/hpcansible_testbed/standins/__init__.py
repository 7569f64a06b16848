"""Stand-ins for programs hpcansible drives but which cannot be installed on the test machines.

hpcansible's roles start cAdvisor in every service job and Ollama as a service. Neither is packaged
for Debian 12 or PyPI and the test machines have no internet, so tests run these stand-ins instead:
they accept the real programs' command-line flags and serve the real HTTP APIs and metric names,
but they are NOT cAdvisor or Ollama. Every response carries the STANDIN_HEADER, and each program
says what it is in its --help text and in its first log line.

- `ollama-standin`    (hpcansible_testbed.standins.ollama): simulated inference with calibrated
  timing.
- `cadvisor-standin`  (hpcansible_testbed.standins.cadvisor): per-SLURM-job metrics read from
  /proc.
"""

STANDIN_HEADER = "X-Hpcansible-Standin"
