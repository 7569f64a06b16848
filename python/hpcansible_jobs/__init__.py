"""What runs inside a session's SLURM jobs, on the compute nodes: the benchmark client
(`python -m hpcansible_jobs.bench`) and the GPU exporter (`python -m hpcansible_jobs.gpu_exporter`).

This part needs neither Ansible nor the CLI (`hpcansible`): a compute node's environment is
`pip install hpcansible` without the `cli` extra. The CLI and the collection may import it
(the recipe checks use the client's own option rules); it imports neither of them.
"""

__version__ = "0.1.0"
