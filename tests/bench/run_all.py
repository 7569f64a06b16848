"""Run the bench client's benchmarks and print their figures (not part of pytest).

    .venv/bin/python tests/bench/run_all.py            # all, about 5.5 minutes
    .venv/bin/python tests/bench/run_all.py --quick    # shorter runs, about 2.5 minutes
    .venv/bin/python tests/bench/run_all.py --only calibration,nginx

Each benchmark starts its own servers on 127.0.0.1 (free ports, temp dirs) and stops
them. Figures depend on the machine and on what else runs on it: the load average is
printed before and after.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

BENCHMARKS = {
    "calibration": "bench_calibration",
    "nginx": "bench_nginx",
    "capacity": "bench_capacity",
    "coordinated_omission": "bench_coordinated_omission",
    "real_servers": "bench_real_servers",
    "memory": "bench_memory",
    # issue 10: the native engines against the plain tools, the Python engine beside them
    "native_redis": "bench_native_redis",
    "native_http": "bench_native_http",
    # needs the testbed up (python -m hpcansible testbed up); about 3 minutes
    "session": "bench_session",
}


def passed(name: str, results: list) -> bool | None:
    """Whether a benchmark met its target (real_servers: every run without errors);
    None for one that only reports figures."""
    if name == "memory":
        return None
    if name == "calibration":
        return all(r["ok"] for r in results if r["server"] == "calibrated")
    if name == "nginx":
        return all(r["ok"] for r in results)
    if name == "real_servers":
        return all(row[2] == 0 for row in results)
    if name in ("native_redis", "native_http"):
        return all(r["ok"] for r in results)
    if name == "session":
        return all(result["ok"] for result in results)
    return bool(results[-1]["ok"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark {', '.join(sorted(unknown))}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    verdicts = {}
    for name in names:
        print(f"\n=== {name} ===")
        started = time.monotonic()
        results = importlib.import_module(BENCHMARKS[name]).main(quick=args.quick)
        verdicts[name] = passed(name, results)
        print(f"({time.monotonic() - started:.0f} s)")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    for name, ok in verdicts.items():
        print(f"{name:22s} {'figures only' if ok is None else 'PASS' if ok else 'MISS'}")
    return 0 if all(ok is not False for ok in verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
