"""How much a session costs beyond raw SLURM: `hpcansible run` against the same six steps
typed by hand, on the testbed, in one run (issue 9).

    .venv/bin/python tests/bench/bench_session.py [--repeat N]   # or run_all.py --only session

For the seed-era Redis recipes and the default llama.cpp recipes it times `hpcansible run`
(the CLI's wall time until it prints the tunnel) and, right after, the raw floor: the same
session's rendered job scripts submitted by hand with sbatch, squeue polled every 0.1 s, the
service's port probed, the client's config edited, the targets written and checked with
promtool, Prometheus submitted and polled until every target is up, the gate file written,
the tunnel printed. Both wait for the same real things (SLURM starting jobs, the service
loading, Prometheus's first scrape); what hpcansible adds is its orchestration overhead.

The breakdown of the hpcansible run, from the jobs' own times:
- SLURM start: submit to running, summed over the three jobs (sbatch to squeue RUNNING);
- service readiness: the service job running to its port answering;
- first scrape: Prometheus ready to every target up;
- orchestration overhead: time to ready minus the raw floor measured in the same run.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
SESSIONS = Path.home() / "hpcansible" / "sessions"
RECIPE_SETS = {
    "seed redis": [ROOT / "recipes" / "seed" / name for name in
                   ("redis_with_cadvisor.yaml", "redis_benchmark.yaml",
                    "prometheus_with_cadvisor.yaml")],
    "default llama.cpp": [],
}  # fmt: skip
TARGET_RATIO = 1.5
TARGET_OVERHEAD_S = 5.0
POLL_S = 0.1
STEP_LABELS = {"0": "CLI + Ansible start, resolve", "end": "Ansible's exit, CLI summary"}


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    return env


def cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "hpcansible", *args], cwd=ROOT, env=environment(),
                          capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip


def squeue_state(job_id: str) -> tuple[str, str]:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T %N"], capture_output=True,
                         text=True, check=False).stdout.split()  # fmt: skip
    return (out[0], out[1] if len(out) > 1 else "") if out else ("GONE", "")


def wait_until(check, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(POLL_S)
    raise TimeoutError(f"not within {timeout} s: {check}")


def port_answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def http_ok(url: str, headers: dict[str, str]) -> dict | None:
    try:
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=2) as response:
            return json.loads(response.read()) if "api/" in url else {"ok": True}
    except (OSError, ValueError):
        return None


def hpcansible_session(name: str, recipes: list[Path]) -> dict:
    session_id = f"bench_{name.split()[-1].replace('.', '')}_{time.strftime('%H%M%S')}"
    started, started_epoch = time.monotonic(), time.time()
    done = cli("run", "--session-id", session_id, *map(str, recipes))
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"{name}: run failed: {done.stderr[-2000:]}")
    record = json.loads((SESSIONS / session_id / "session.json").read_text())
    record["_wall_s"] = wall
    record["_cli_started"], record["_cli_ended"] = started_epoch, started_epoch + wall
    return record


def step_seconds(record: dict) -> dict[str, float]:
    from datetime import datetime

    def stamp(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    # Step 0 from the CLI's own start: its recipe check, Ansible's start (interpreter, inventory,
    # Mitogen's first connection), the recipes action and the session's opening.
    steps = {"0": stamp(record["steps"]["1"]["started"]) - record["_cli_started"]}
    for number, step in sorted(record["steps"].items()):
        steps[number] = stamp(step["finished"]) - stamp(step["started"])
    steps["end"] = record["_cli_ended"] - stamp(record["steps"]["6"]["finished"])
    return steps


def raw_floor(record: dict) -> dict[str, float]:
    """The six steps by hand, with the session's own job scripts, into its own folder."""
    directory = Path(record["session_dir"])
    jobs = record["jobs"]
    timings: dict[str, float] = {}
    tag = f"raw_{record['id']}"
    submitted: list[str] = []

    def submit(role: str) -> str:
        argv = [
            arg for arg in jobs[role]["sbatch"] if not arg.startswith(("--comment", "--job-name"))
        ]
        argv += [f"--job-name={tag}-{role}", f"--comment=bench:{tag}"]
        done = subprocess.run([*argv, jobs[role]["script"]], capture_output=True, text=True,
                              check=True)  # fmt: skip
        submitted.append(done.stdout.strip().split(";")[0])
        return submitted[-1]

    def running(job_id: str) -> str:
        return wait_until(
            lambda: (lambda s: s[1] if s[0] == "RUNNING" else "")(squeue_state(job_id))
        )

    try:
        start = time.monotonic()
        service = submit("service")
        node = running(service)
        wait_until(lambda: port_answers(node, int(record["service"]["port"])))
        if record["service"]["type"] == "llamacpp":  # as curl would: the model answers
            key = (directory / "service" / "llamacpp" / "api_key").read_text().strip()
            url = f"http://{node}:{record['service']['port']}/v1/models"
            wait_until(lambda: http_ok(url, {"Authorization": f"Bearer {key}"}), 300)
        timings["1+2 service (sbatch, squeue, health)"] = time.monotonic() - start

        mark = time.monotonic()
        config = directory / "client" / "bench.yml"
        text = config.read_text().replace(record["service_endpoint"].split("://")[1],
                                          f"{node}:{record['service']['port']}")  # fmt: skip
        config.write_text(text)
        (directory / "client" / "gate").unlink(missing_ok=True)
        client = submit("client")
        client_node = running(client)
        metrics_port = int(record["client"]["metrics_port"])
        wait_until(lambda: http_ok(f"http://{client_node}:{metrics_port}/metrics", {}))
        timings["3 client (edit, sbatch, metrics)"] = time.monotonic() - mark

        mark = time.monotonic()
        targets = directory / "prometheus" / "targets"
        exporter_job = record["service"]["exporter_job"]
        (targets / f"{exporter_job}.yml").write_text(
            f"- targets: ['{node}:{record['service']['exporter_port']}']\n"
        )
        (targets / f"{record['client']['name']}.yml").write_text(
            f"- targets: ['{client_node}:{metrics_port}']\n")  # fmt: skip
        subprocess.run(["promtool", "check", "config", record["prometheus"]["config"]],
                       capture_output=True, check=True)  # fmt: skip
        timings["4 targets + promtool"] = time.monotonic() - mark

        mark = time.monotonic()
        auth = record["prometheus"]["auth"]
        password = Path(auth["password_file"]).read_text().strip()
        token = base64.b64encode(f"{auth['username']}:{password}".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
        prometheus = submit("prometheus")
        prometheus_node = running(prometheus)
        url = f"http://{prometheus_node}:{record['prometheus']['port']}"
        wait_until(lambda: http_ok(f"{url}/-/ready", headers))

        def all_up():
            answer = http_ok(f"{url}/api/v1/targets?state=active", headers)
            active = (answer or {}).get("data", {}).get("activeTargets", [])
            return len(active) >= 3 and all(t["health"] == "up" for t in active)

        wait_until(all_up)
        (directory / "client" / "gate").write_text('{"released_at": "now", "by": "bench"}\n')
        timings["5 prometheus (sbatch, ready, targets up)"] = time.monotonic() - mark
        mark = time.monotonic()
        print(f"    ssh -N -L 9090:{prometheus_node}:9090 -p 8822 root@login")
        timings["6 tunnel"] = time.monotonic() - mark
        timings["total"] = time.monotonic() - start
    finally:
        subprocess.run(["scancel", *submitted], check=False)
        wait_until(lambda: all(squeue_state(job)[0] == "GONE" for job in submitted), 60)
    return timings


def job_times(record: dict) -> dict[str, float]:
    """SLURM start (submit -> start) per job, from scontrol (whole seconds)."""
    from datetime import datetime

    found = {}
    for role, job in record["jobs"].items():
        out = subprocess.run(["scontrol", "show", "job", "-o", str(job["job_id"])],
                             capture_output=True, text=True, check=False).stdout  # fmt: skip
        fields = dict(part.split("=", 1) for part in shlex.split(out) if "=" in part)
        try:
            submit = datetime.fromisoformat(fields["SubmitTime"]).timestamp()
            begin = datetime.fromisoformat(fields["StartTime"]).timestamp()
            found[role] = begin - submit
        except (KeyError, ValueError):
            found[role] = float("nan")
    return found


def measure(name: str, recipes: list[Path]) -> dict:
    """One hpcansible run of a recipe set and, right after, its raw floor; printed as it goes."""
    print(f"--- {name}: hpcansible run")
    record = hpcansible_session(name, recipes)
    steps = step_seconds(record)
    slurm_start = sum(job_times(record).values())
    cli("stop", record["id"])
    print(f"--- {name}: the same steps by hand")
    raw = raw_floor(record)
    wall, floor = record["_wall_s"], raw["total"]
    service_ready = steps["2"]
    first_scrape = steps["5"]
    overhead = wall - floor
    ratio = wall / floor
    print(f"  hpcansible run: {wall:.1f} s to ready (CLI wall time)")
    for number, seconds in steps.items():
        label = STEP_LABELS.get(number) or record["steps"][number]["name"]
        print(f"    step {number:<3} {label:<28} {seconds:6.1f} s")
    print(f"  raw SLURM floor: {floor:.1f} s")
    for label, seconds in raw.items():
        if label != "total":
            print(f"    {label:<42} {seconds:6.1f} s")
    print(
        f"  breakdown: SLURM start {slurm_start:.1f} s (3 jobs, whole seconds), "
        f"step 2 (service readiness) {service_ready:.1f} s, step 5 (Prometheus and "
        f"first scrape) {first_scrape:.1f} s, orchestration overhead {overhead:.1f} s"
    )
    print(f"  this run: ratio {ratio:.2f}, overhead {overhead:.1f} s")
    return {"name": name, "wall_s": wall, "floor_s": floor, "ratio": ratio,
            "overhead_s": overhead, "steps": steps}  # fmt: skip


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def main(quick: bool = False, repeat: int | None = None) -> list[dict]:
    """Each recipe set `repeat` times (3, or 1 with quick), interleaved; judged on medians:
    Prometheus's first scrape moves a single run by about 2 s."""
    repeat = repeat or (1 if quick else 3)
    runs: dict[str, list[dict]] = {name: [] for name in RECIPE_SETS}
    for round_number in range(1, repeat + 1):
        for name, recipes in RECIPE_SETS.items():
            print(f"=== round {round_number} of {repeat}")
            runs[name].append(measure(name, recipes))
    results = []
    print(f"--- medians of {repeat} run(s) each")
    for name, measured in runs.items():
        figures = {key: median([run[key] for run in measured])
                   for key in ("wall_s", "floor_s", "ratio", "overhead_s")}  # fmt: skip
        steps = {number: median([run["steps"][number] for run in measured])
                 for number in measured[0]["steps"]}  # fmt: skip
        ok = figures["ratio"] <= TARGET_RATIO and figures["overhead_s"] <= TARGET_OVERHEAD_S
        print(f"  {name}: hpcansible {figures['wall_s']:.1f} s, floor {figures['floor_s']:.1f} s, "
              f"ratio {figures['ratio']:.2f} (target <= {TARGET_RATIO}), overhead "
              f"{figures['overhead_s']:.1f} s (target < {TARGET_OVERHEAD_S:g} s): "
              f"{'PASS' if ok else 'MISS'}")  # fmt: skip
        print("    steps (median): " + ", ".join(f"{number} {seconds:.1f}"
                                                for number, seconds in steps.items()))  # fmt: skip
        print("    runs: " + ", ".join(f"{run['wall_s']:.1f}/{run['floor_s']:.1f} s"
                                      for run in measured))  # fmt: skip
        results.append({"name": name, **figures, "runs": len(measured), "ok": ok})
    return results


if __name__ == "__main__":
    count = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else None
    outcome = main(quick="--quick" in sys.argv, repeat=count)
    sys.exit(0 if all(result["ok"] for result in outcome) else 1)
