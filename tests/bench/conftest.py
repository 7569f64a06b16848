"""Benchmark scripts run on demand (python tests/bench/run_all.py), never by pytest."""

collect_ignore_glob = ["*.py"]
