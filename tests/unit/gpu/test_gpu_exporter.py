"""The NVML GPU exporter against a fake NVML: metric names, units and labels as dcgm-exporter's,
the job's GPUs only, per-process memory of the job's processes, XIDs, and the no-GPU path."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from fake_nvml import MIB, FakeGpu, install, pynvml
from hpcansible_jobs.gpu_exporter.collector import GPU_LABELS, GpuCollector
from hpcansible_jobs.gpu_exporter.exposition import render
from hpcansible_jobs.gpu_exporter.job_processes import JobProcesses
from hpcansible_jobs.gpu_exporter.selection import job_selection
from hpcansible_jobs.gpu_exporter.xid import watch_xids
from prometheus_client.parser import text_string_to_metric_families

PROJECT = Path(__file__).resolve().parents[3]
DCGM_FIELDS = {
    # name: (type, help) as in dcgm-exporter's etc/default-counters.csv
    "DCGM_FI_DEV_SM_CLOCK": ("gauge", "SM clock frequency (in MHz)."),
    "DCGM_FI_DEV_GPU_TEMP": ("gauge", "GPU temperature (in C)."),
    "DCGM_FI_DEV_POWER_USAGE": ("gauge", "Power draw (in W)."),
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": (
        "counter",
        "Total energy consumption since boot (in mJ).",
    ),
    "DCGM_FI_DEV_GPU_UTIL": ("gauge", "GPU utilization (in %)."),
    "DCGM_FI_DEV_MEM_COPY_UTIL": ("gauge", "Memory utilization (in %)."),
    "DCGM_FI_DEV_XID_ERRORS": ("gauge", "Value of the last XID error encountered."),
    "DCGM_FI_DEV_FB_FREE": ("gauge", "Framebuffer memory free (in MiB)."),
    "DCGM_FI_DEV_FB_USED": ("gauge", "Framebuffer memory used (in MiB)."),
}
UUIDS = [
    "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6",
    "GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52",
    "GPU-2d9067e4-8fab-5820-6228-69e2e74b3d58",
]


def four_gpus() -> list[FakeGpu]:
    return [
        FakeGpu(uuid=UUIDS[0], minor=0, pci_bus_id="00000000:18:00.0"),
        FakeGpu(uuid=UUIDS[1], minor=1, pci_bus_id="00000000:2A:00.0", utilization=3),
        FakeGpu(uuid=UUIDS[2], minor=2, pci_bus_id="00000000:3A:00.0"),
        FakeGpu(uuid="GPU-ffffffff-0000-1111-2222-333333333333", minor=7),
    ]


def fake_proc(tmp_path: Path, processes: dict[int, tuple[int, str, str]]) -> Path:
    """A /proc with pid -> (parent pid, command name, environment as 'A=1\\0B=2')."""
    for pid, (parent, name, environ) in processes.items():
        folder = tmp_path / "proc" / str(pid)
        folder.mkdir(parents=True)
        (folder / "stat").write_text(f"{pid} ({name}) S {parent} {pid} {pid} 0 -1\n")
        (folder / "comm").write_text(f"{name}\n")
        (folder / "environ").write_bytes(environ.encode())
    return tmp_path / "proc"


def scrape(collector: GpuCollector) -> dict[str, list]:
    """name -> [(labels, value)], parsed back with prometheus-client's own text parser."""
    families = text_string_to_metric_families(render(collector.collect()).decode())
    return {
        family.name: [(sample.labels, sample.value) for sample in family.samples]
        for family in families
    }


def started(environ: dict[str, str], job_id: str = "4242", **options) -> GpuCollector:
    collector = GpuCollector(job_selection(environ), job_id, hostname="gpu-node7", **options)
    collector.start()
    return collector


# --- every metric, with dcgm-exporter's names, types, units and labels ----------------------


def test_every_dcgm_metric_has_its_type_help_labels_and_units(monkeypatch):
    install(monkeypatch, four_gpus())
    collector = started({"CUDA_VISIBLE_DEVICES": "0"})
    text = render(collector.collect()).decode()
    for name, (kind, help_text) in DCGM_FIELDS.items():
        assert f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n" in text, name
    expected_labels = {
        "gpu": "0",
        "UUID": UUIDS[0],
        "pci_bus_id": "00000000:18:00.0",
        "device": "nvidia0",
        "modelName": "NVIDIA H200",
        "Hostname": "gpu-node7",
        "hpc_job": "4242",
    }
    samples = scrape(collector)
    for name in DCGM_FIELDS:
        assert [labels for labels, _ in samples[name]] == [expected_labels], name
    values = {name: samples[name][0][1] for name in DCGM_FIELDS}
    assert values == {
        "DCGM_FI_DEV_SM_CLOCK": 1395,  # MHz
        "DCGM_FI_DEV_GPU_TEMP": 41,  # C
        "DCGM_FI_DEV_POWER_USAGE": 690.25,  # W, from NVML's milliwatts
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": 123_456_789,  # mJ
        "DCGM_FI_DEV_GPU_UTIL": 100,  # %
        "DCGM_FI_DEV_MEM_COPY_UTIL": 37,  # %
        "DCGM_FI_DEV_XID_ERRORS": 0,
        "DCGM_FI_DEV_FB_FREE": 142_274,  # whole MiB, from NVML's bytes
        "DCGM_FI_DEV_FB_USED": 1497,
    }
    # The energy counter keeps dcgm-exporter's name (no _total), integers print as integers.
    assert "\nDCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{" in text
    assert text.count("_total") == 0
    assert 'DCGM_FI_DEV_GPU_UTIL{gpu="0",' in text and "} 100\n" in text
    assert samples["hpcansible_gpu_visible"] == [
        ({"Hostname": "gpu-node7", "hpc_job": "4242", "reason": ""}, 1)
    ]
    assert samples["hpcansible_gpu_exporter_info"][0][0] == {
        "exporter": "hpcansible-nvml",
        "selected_by": "CUDA_VISIBLE_DEVICES='0'",
        "driver_version": "570.124.06",
    }
    assert set(expected_labels) == set(GPU_LABELS)


def test_an_unsupported_reading_is_left_out_and_logged_once(monkeypatch, caplog):
    gpus = four_gpus()
    gpus[0].unsupported = {"energy", "power"}
    install(monkeypatch, gpus)
    collector = started({"CUDA_VISIBLE_DEVICES": "0"})
    for _ in range(3):
        samples = scrape(collector)
    assert samples["DCGM_FI_DEV_POWER_USAGE"] == []
    assert samples["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"] == []
    assert samples["DCGM_FI_DEV_GPU_UTIL"][0][1] == 100
    left_out = [record.getMessage() for record in caplog.records if "left out" in record.message]
    assert sorted(left_out) == [
        f"GPU {UUIDS[0]}: energy left out (Not Supported)",
        f"GPU {UUIDS[0]}: power left out (Not Supported)",
    ]


# --- the job's GPUs only -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"CUDA_VISIBLE_DEVICES": "2,0"}, [UUIDS[2], UUIDS[0]]),
        ({"CUDA_VISIBLE_DEVICES": UUIDS[1]}, [UUIDS[1]]),
        ({"CUDA_VISIBLE_DEVICES": "GPU-2d9067e4,1"}, [UUIDS[2], UUIDS[1]]),  # a UUID prefix
        # SLURM's indices name /dev/nvidia<N>: matched on the minor number, not NVML's index.
        ({"SLURM_JOB_GPUS": "7"}, ["GPU-ffffffff-0000-1111-2222-333333333333"]),
        ({"SLURM_STEP_GPUS": "1", "SLURM_JOB_GPUS": "0,1"}, [UUIDS[1]]),
        # CUDA_VISIBLE_DEVICES is what the service sees: it wins over SLURM's list.
        ({"CUDA_VISIBLE_DEVICES": "1", "SLURM_JOB_GPUS": "2"}, [UUIDS[1]]),
        ({}, [*UUIDS, "GPU-ffffffff-0000-1111-2222-333333333333"]),
    ],
)
def test_only_the_gpus_the_job_was_given_are_served(monkeypatch, environ, expected):
    install(monkeypatch, four_gpus())
    samples = scrape(started(environ))
    assert [labels["UUID"] for labels, _ in samples["DCGM_FI_DEV_GPU_UTIL"]] == expected
    assert samples["hpcansible_gpu_visible"][0][1] == len(expected)


def test_constrained_devices_keep_the_minor_number_in_the_device_label(monkeypatch):
    """With ConstrainDevices NVML lists only the job's GPU, as index 0; /dev/nvidia3 stays 3."""
    install(monkeypatch, [FakeGpu(uuid=UUIDS[0], minor=3)])
    samples = scrape(started({"CUDA_VISIBLE_DEVICES": "0", "SLURM_JOB_GPUS": "3"}))
    labels = samples["DCGM_FI_DEV_FB_USED"][0][0]
    assert (labels["gpu"], labels["device"]) == ("0", "nvidia3")
    samples = scrape(started({"SLURM_JOB_GPUS": "3"}))
    assert [labels["UUID"] for labels, _ in samples["DCGM_FI_DEV_FB_USED"]] == [UUIDS[0]]


# --- per-process GPU memory of the job's processes --------------------------------------------


def test_per_process_memory_counts_only_the_jobs_processes(monkeypatch, tmp_path):
    gpus = four_gpus()
    gpus[0].processes = [(501, 1200 * MIB), (502, 255 * MIB), (777, 9000 * MIB), (503, None)]
    install(monkeypatch, gpus)
    proc = fake_proc(
        tmp_path,
        {
            100: (1, "slurm_script", "SLURM_JOB_ID=4242\0"),
            # the service: in the job by its environment
            501: (100, "llama-server", "HOME=/x\0SLURM_JOB_ID=4242\0"),
            # a child that rewrote its environment: in the job as a descendant of the script
            502: (501, "worker (gpu) x", ""),
            # another job's process on a shared GPU
            777: (1, "python3", "SLURM_JOB_ID=9999\0"),
            503: (100, "no-memory-info", "SLURM_JOB_ID=4242\0"),
        },
    )
    collector = started(
        {"CUDA_VISIBLE_DEVICES": "0"}, processes=JobProcesses("4242", job_root_pid=100, proc=proc)
    )
    samples = scrape(collector)["hpcansible_gpu_process_memory_used_mib"]
    assert [(labels["pid"], labels["process"], value) for labels, value in samples] == [
        ("501", "llama-server", 1200),
        ("502", "worker (gpu) x", 255),
    ]
    assert {labels["UUID"] for labels, _ in samples} == {UUIDS[0]}
    assert {labels["hpc_job"] for labels, _ in samples} == {"4242"}


def test_outside_slurm_every_process_counts(tmp_path):
    members = JobProcesses("", job_root_pid=1, proc=tmp_path)
    assert members.belongs(12345)


def test_job_membership_on_the_real_proc():
    members = JobProcesses("no-such-job", job_root_pid=os.getppid())
    assert members.belongs(os.getpid())  # a descendant of our parent
    assert not members.belongs(1)
    assert members.name(os.getpid())


# --- XID errors --------------------------------------------------------------------------------


def test_xid_events_become_the_last_xid_of_their_gpu(monkeypatch):
    gpus = four_gpus()
    fake = install(monkeypatch, gpus)
    collector = started({"CUDA_VISIBLE_DEVICES": "0,1"})
    fake.events = [
        SimpleNamespace(
            device=gpus[1], eventType=pynvml.nvmlEventTypeXidCriticalError, eventData=79
        ),
        SimpleNamespace(
            device=gpus[1], eventType=pynvml.nvmlEventTypeXidCriticalError, eventData=48
        ),
    ]
    stop = threading.Event()
    thread = threading.Thread(
        target=watch_xids, args=(pynvml, collector.gpus, collector.record_xid, stop)
    )
    thread.start()
    assert fake.event_ready.wait(5), "the watcher never waited for events"
    stop.set()
    thread.join(5)
    xids = {labels["UUID"]: value for labels, value in scrape(collector)["DCGM_FI_DEV_XID_ERRORS"]}
    assert xids == {UUIDS[0]: 0, UUIDS[1]: 48}


# --- no GPU visible: say so, keep serving -------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "init_error", "gpus", "reason"),
    [
        (
            {},
            pynvml.NVML_ERROR_LIBRARY_NOT_FOUND,
            [],
            "NVML init failed: NVML Shared Library Not Found",
        ),
        ({}, pynvml.NVML_ERROR_DRIVER_NOT_LOADED, [], "NVML init failed: Driver Not Loaded"),
        ({}, None, [], "NVML lists no GPU on this node"),
        (
            {"CUDA_VISIBLE_DEVICES": "NoDevFiles"},
            None,
            None,
            "CUDA_VISIBLE_DEVICES='NoDevFiles' names none of the 4 GPU(s) NVML lists",
        ),
        (
            {"SLURM_JOB_GPUS": "5"},
            None,
            None,
            "SLURM_JOB_GPUS='5' names none of the 4 GPU(s) NVML lists",
        ),
    ],
)
def test_no_gpu_visible_is_a_metric_and_one_log_line(
    monkeypatch, caplog, environ, init_error, gpus, reason
):
    install(monkeypatch, four_gpus() if gpus is None else gpus, init_error=init_error)
    collector = started(environ)
    for _ in range(3):
        samples = scrape(collector)
    assert samples["hpcansible_gpu_visible"] == [
        ({"Hostname": "gpu-node7", "hpc_job": "4242", "reason": reason}, 0)
    ]
    assert not any(name.startswith("DCGM_") for name in samples)
    lines = [record.getMessage() for record in caplog.records]
    assert lines.count(f"no GPU visible ({reason}); serving hpcansible_gpu_visible 0") == 1


def test_no_nvidia_ml_py_is_a_reason_too():
    def missing():
        raise ImportError("No module named 'pynvml'")

    collector = GpuCollector(job_selection({}), "1", hostname="n", load_nvml=missing)
    collector.start()
    assert collector.reason.startswith("nvidia-ml-py is not installed")
    assert "hpcansible_gpu_visible{" in render(collector.collect()).decode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch_when_up(url: str, process: subprocess.Popen, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, "the exporter exited"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            assert time.monotonic() < deadline, f"no answer at {url}"
            time.sleep(0.1)


def test_the_exporter_process_serves_on_the_given_address_without_a_gpu():
    """The real program, as the job starts it: no GPU visible here, and it keeps serving."""
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "hpcansible_jobs.gpu_exporter"),
            *("--address", "127.0.0.1", "--port", str(port), "--job-id", "77"),
        ],
        # An empty CUDA_VISIBLE_DEVICES hides every GPU, also on a machine that has one.
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = fetch_when_up(f"http://127.0.0.1:{port}/metrics", process)
        second = fetch_when_up(f"http://127.0.0.1:{port}/metrics", process)
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=10)
    assert process.returncode == 0
    assert first == second
    (visible,) = [
        family
        for family in text_string_to_metric_families(first)
        if family.name == "hpcansible_gpu_visible"
    ]
    (sample,) = visible.samples
    assert sample.value == 0 and sample.labels["hpc_job"] == "77"
    assert sample.labels["reason"]  # NVML init failed here; "names none" on a GPU machine
    assert errors.count("no GPU visible") == 1, errors
    assert f"serving http://127.0.0.1:{port}/metrics" in errors


def test_the_exporter_runs_with_prometheus_client_alone(tmp_path):
    """It runs from a compute node's Python that has only prometheus-client (and, to see GPUs,
    nvidia-ml-py): nothing else of hpcansible's dependencies is imported. Without
    nvidia-ml-py it says so and still serves."""
    import prometheus_client

    packages = tmp_path / "site"
    packages.mkdir()
    (packages / "prometheus_client").symlink_to(Path(prometheus_client.__file__).parent)
    done = subprocess.run(
        [sys.executable, "-S", "-m", "hpcansible_jobs.gpu_exporter", "--once", "--job-id", "5"],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": f"{PROJECT / 'python'}:{packages}"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "no GPU visible (nvidia-ml-py is not installed" in done.stderr
    assert 'hpcansible_gpu_visible{Hostname="' in done.stdout
