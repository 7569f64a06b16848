"""hpcansible: benchmark a service on a SLURM cluster and watch it in Prometheus."""

__version__ = "0.1.0"
