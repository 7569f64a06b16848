"""hpcansible: benchmark a service on a SLURM cluster and watch it in Prometheus."""

from hpcansible_jobs import __version__

__all__ = ["__version__"]
