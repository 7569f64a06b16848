"""Verify hpcansible's NVML GPU exporter on a real GPU, under a PyTorch bf16 matrix-product load.

It starts `python -m hpcansible_jobs.gpu_exporter` on 127.0.0.1, scrapes it while the GPU is idle,
starts a bf16 matmul loop in a child process (torch, cuda:0) for --seconds, scrapes it under
load, and prints, per reading, idle against load: utilisation, power, SM clock, memory used,
temperature, the energy counter's increase, and the load process's own GPU memory
(hpcansible_gpu_process_memory_used_mib for its pid). It exits 0 when the exporter served
utilisation above 90 %, power above idle, memory used rising and the load's process memory;
1 when a check fails; 2 when no GPU is visible (nothing to verify).

Needs: a GPU with its driver, python3 with torch (CUDA), prometheus-client and nvidia-ml-py.
From the repository root:

    PYTHONPATH=python python3 tests/gpu/verify_gpu_exporter.py --seconds 20 --json /tmp/gpu.json

On the lent H200 (the `device` tool of the session library; it has no network, so bring the two
small wheels along in the ignored build/ folder). Here first:

    python3 -m pip download --no-deps -d build/gpu-wheels prometheus-client nvidia-ml-py

then one device call, carry ["build/gpu-wheels"], timeout_s 300:

    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader;
    python3 -m pip install -q --no-index --find-links build/gpu-wheels --target /tmp/gpudeps
    prometheus-client nvidia-ml-py && PYTHONPATH=python:/tmp/gpudeps python3
    tests/gpu/verify_gpu_exporter.py --seconds 20 --json "$OUT/gpu_exporter.json"

(one line, the parts joined by spaces). Issue 11's note records the figures it printed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
READINGS = {
    "utilisation %": "DCGM_FI_DEV_GPU_UTIL",
    "memory copy utilisation %": "DCGM_FI_DEV_MEM_COPY_UTIL",
    "power W": "DCGM_FI_DEV_POWER_USAGE",
    "SM clock MHz": "DCGM_FI_DEV_SM_CLOCK",
    "memory used MiB": "DCGM_FI_DEV_FB_USED",
    "memory free MiB": "DCGM_FI_DEV_FB_FREE",
    "temperature C": "DCGM_FI_DEV_GPU_TEMP",
    "energy mJ": "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "last XID": "DCGM_FI_DEV_XID_ERRORS",
}
# The load: bf16 matrix products on cuda:0 until the deadline, synchronised every 20 products.
LOAD = """
import sys, time, torch
seconds, size = float(sys.argv[1]), int(sys.argv[2])
a = torch.randn(size, size, device="cuda:0", dtype=torch.bfloat16)
b = torch.randn(size, size, device="cuda:0", dtype=torch.bfloat16)
torch.cuda.synchronize()
print("ready", torch.cuda.get_device_name(0), flush=True)
start = time.monotonic()
products = 0
while time.monotonic() < start + seconds:
    for _ in range(20):
        c = a @ b
    torch.cuda.synchronize()
    products += 20
rate = 2 * size**3 * products / (time.monotonic() - start) / 1e12
print(f"done: {products} products of {size}x{size}, {rate:.0f} TFLOP/s", flush=True)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        family.name: [(sample.labels, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(text)
    }


def first_gpu(samples: dict) -> dict[str, float]:
    """The readings of the first GPU the exporter serves."""
    values = {}
    for label, name in READINGS.items():
        if samples.get(name):
            values[label] = samples[name][0][1]
    return values


def wait_for_exporter(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the exporter exited with {process.returncode}")
        try:
            scrape(url)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"the exporter did not answer at {url}") from None
            time.sleep(0.2)


def run(seconds: float, size: int) -> tuple[dict[str, Any], list[str]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "python"), os.environ.get("PYTHONPATH", "")]),
    }
    exporter = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hpcansible_jobs.gpu_exporter",
            "--address",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    result: dict[str, Any] = {"url": url, "idle": [], "load": [], "processes": []}
    failures: list[str] = []
    try:
        wait_for_exporter(url, exporter)
        first = scrape(url)
        visible = first["hpcansible_gpu_visible"][0]
        result["visible"] = {"count": visible[1], **visible[0]}
        result["labels"] = first.get("DCGM_FI_DEV_GPU_UTIL", [({}, 0)])[0][0]
        if not visible[1]:
            print(f"no GPU visible: {visible[0]['reason']}")
            return result, ["no GPU visible"]
        for _ in range(3):
            result["idle"].append(first_gpu(scrape(url)))
            time.sleep(1)
        load = subprocess.Popen(
            [sys.executable, "-c", LOAD, str(seconds), str(size)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = load.stdout.readline().strip()
        if not ready.startswith("ready"):
            load.wait()
            return result, [f"the PyTorch load did not start (exit {load.returncode}): {ready!r}"]
        result["load_device"] = ready.removeprefix("ready ").strip()
        time.sleep(2)  # past NVML's utilisation sample period
        while load.poll() is None:
            samples = scrape(url)
            result["load"].append(first_gpu(samples))
            result["processes"].append(
                [
                    {**labels, "used_mib": value}
                    for labels, value in samples.get("hpcansible_gpu_process_memory_used_mib", [])
                ]
            )
            time.sleep(1)
        result["load_output"] = load.stdout.read().strip()
        result["after"] = first_gpu(scrape(url))
        result["load_pid"] = load.pid
    finally:
        exporter.terminate()
        _, log = exporter.communicate(timeout=10)
        result["exporter_log"] = log.strip().splitlines()
    failures += check(result)
    return result, failures


def check(result: dict[str, Any]) -> list[str]:
    idle, load = result["idle"], result["load"]
    if not load:
        return ["no scrape under load"]
    failures = []

    def peak(readings: list[dict], label: str) -> float:
        return max(reading.get(label, float("nan")) for reading in readings)

    if not peak(load, "utilisation %") > 90:
        failures.append(f"utilisation under load {peak(load, 'utilisation %')} %, not above 90 %")
    if not peak(load, "power W") > peak(idle, "power W"):
        failures.append("power under load not above idle")
    if not peak(load, "memory used MiB") > peak(idle, "memory used MiB"):
        failures.append("memory used did not rise under load")
    pids = {str(result.get("load_pid"))}
    if not any(
        process["pid"] in pids and process["used_mib"] > 0
        for scrape in result["processes"]
        for process in scrape
    ):
        failures.append("the load's process memory was not served")
    if not result["after"].get("energy mJ", 0) > idle[0].get("energy mJ", 0):
        failures.append("the energy counter did not increase")
    return failures


def table(result: dict[str, Any]) -> str:
    idle, load = result["idle"], result["load"]
    lines = [f"{'reading':28} {'idle':>14} {'under load':>22}"]
    for label in READINGS:
        if label == "energy mJ":
            continue
        idle_values = [reading[label] for reading in idle if label in reading]
        load_values = [reading[label] for reading in load if label in reading]
        if not idle_values:
            continue
        low, high = min(load_values, default=float("nan")), max(load_values, default=float("nan"))
        spread = f"{low:g}" if low == high else f"{low:g} to {high:g}"
        lines.append(f"{label:28} {idle_values[-1]:>14g} {spread:>22}")
    if load and "energy mJ" in result["after"] and "energy mJ" in idle[-1]:
        joules = (result["after"]["energy mJ"] - idle[-1]["energy mJ"]) / 1000
        lines.append(f"{'energy during the load J':28} {'':>14} {joules:>22.0f}")
    own = [
        process["used_mib"]
        for scrape in result["processes"]
        for process in scrape
        if process["pid"] == str(result.get("load_pid"))
    ]
    if own:
        lines.append(f"{'load process memory MiB':28} {'':>14} {max(own):>22g}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20, help="length of the load (default 20)")
    parser.add_argument("--size", type=int, default=8192, help="matrix size (default 8192)")
    parser.add_argument("--json", type=Path, help="write every scrape and the verdict here")
    args = parser.parse_args()
    result, failures = run(args.seconds, args.size)
    if result.get("idle"):
        labels = result["labels"]
        gpu = " ".join(labels.get(name, "") for name in ("gpu", "modelName", "UUID"))
        print(f"GPU {gpu} on {labels.get('Hostname')}")
        print(table(result))
        print(result.get("load_output", ""))
    result["failures"] = failures
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if failures == ["no GPU visible"]:
        return 2
    for failure in failures:
        print(f"FAIL {failure}")
    print("OK: the exporter served the GPU's figures under load" if not failures else "")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
