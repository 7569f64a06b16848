"""Read the job's GPUs through NVML at each scrape, as dcgm-exporter's metric families.

`GpuCollector.start()` initialises NVML once, lists the GPUs and keeps the job's (selection.py).
When that fails (nvidia-ml-py missing, no driver, NVML error, no GPU left) it records why,
logs "no GPU visible" once, and from then on serves only hpcansible_gpu_visible 0 with the
reason. A reading that one GPU does not support (or that fails once) leaves out that sample and
is logged once; the others are still served.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from prometheus_client.metrics_core import Metric

from hpcansible_jobs.gpu_exporter import EXPORTER_NAME
from hpcansible_jobs.gpu_exporter.job_processes import JobProcesses
from hpcansible_jobs.gpu_exporter.selection import Device, Selection, select

log = logging.getLogger("hpcansible_jobs.gpu_exporter")

MIB = 1024 * 1024
GPU_LABELS = ("gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "hpc_job")
PROCESS_METRIC = "hpcansible_gpu_process_memory_used_mib"
VISIBLE_METRIC = "hpcansible_gpu_visible"
INFO_METRIC = "hpcansible_gpu_exporter_info"


def _text(value: str | bytes) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class Gpu:
    handle: Any
    index: int
    minor: int | None
    uuid: str
    name: str
    pci_bus_id: str

    @property
    def device(self) -> Device:
        return Device(self.index, self.minor, self.uuid)

    def labels(self, hostname: str, job_id: str) -> dict[str, str]:
        return {
            "gpu": str(self.index),
            "UUID": self.uuid,
            "pci_bus_id": self.pci_bus_id,
            "device": f"nvidia{self.index if self.minor is None else self.minor}",
            "modelName": self.name,
            "Hostname": hostname,
            "hpc_job": job_id,
        }


@dataclass(frozen=True)
class Field:
    """One dcgm-exporter metric family (name, type and help text as in default-counters.csv)."""

    name: str
    type: str
    help: str


SM_CLOCK = Field("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).")
GPU_TEMP = Field("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).")
POWER = Field("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).")
ENERGY = Field(
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "counter",
    "Total energy consumption since boot (in mJ).",
)
GPU_UTIL = Field("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).")
MEM_COPY_UTIL = Field("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).")
FB_FREE = Field("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).")
FB_USED = Field("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).")
XID = Field("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.")
DEVICE_FIELDS = (SM_CLOCK, GPU_TEMP, POWER, ENERGY, GPU_UTIL, MEM_COPY_UTIL, XID, FB_FREE, FB_USED)

# One NVML call per reader; each returns the values of the fields it reads.
Reader = Callable[[ModuleType, Any], Mapping[Field, float]]


def read_clock(nvml: ModuleType, handle: Any) -> Mapping[Field, float]:
    return {SM_CLOCK: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)}


def read_temperature(nvml: ModuleType, handle: Any) -> Mapping[Field, float]:
    return {GPU_TEMP: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)}


def read_power(nvml: ModuleType, handle: Any) -> Mapping[Field, float]:
    return {POWER: nvml.nvmlDeviceGetPowerUsage(handle) / 1000}  # NVML: milliwatts


def read_energy(nvml: ModuleType, handle: Any) -> Mapping[Field, float]:
    return {ENERGY: nvml.nvmlDeviceGetTotalEnergyConsumption(handle)}  # NVML: millijoules


def read_utilization(nvml: ModuleType, handle: Any) -> Mapping[Field, float]:
    rates = nvml.nvmlDeviceGetUtilizationRates(handle)
    return {GPU_UTIL: rates.gpu, MEM_COPY_UTIL: rates.memory}


def read_memory(nvml: ModuleType, handle: Any) -> Mapping[Field, float]:
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)  # NVML: bytes; DCGM reports whole MiB
    return {FB_FREE: memory.free // MIB, FB_USED: memory.used // MIB}


READERS: tuple[Reader, ...] = (
    read_clock,
    read_temperature,
    read_power,
    read_energy,
    read_utilization,
    read_memory,
)


def import_nvml() -> ModuleType:
    import pynvml  # nvidia-ml-py; imported late so that its absence is a reason, not a crash

    return pynvml


class GpuCollector:
    def __init__(
        self,
        selection: Selection,
        job_id: str,
        hostname: str | None = None,
        processes: JobProcesses | None = None,
        load_nvml: Callable[[], ModuleType] = import_nvml,
    ) -> None:
        self.selection = selection
        self.job_id = job_id
        self.hostname = hostname or socket.gethostname()
        self.processes = processes or JobProcesses(job_id)
        self.load_nvml = load_nvml
        self.nvml: ModuleType | None = None
        self.gpus: list[Gpu] = []
        self.reason = "not started"
        self.driver_version = ""
        self.last_xid: dict[str, int] = {}
        self._logged: set[tuple[str, ...]] = set()
        self._lock = threading.Lock()

    # --- start: find the job's GPUs once ---------------------------------------------------

    def start(self) -> None:
        self.reason = self._find_gpus()
        if self.reason:
            log.warning("no GPU visible (%s); serving %s 0", self.reason, VISIBLE_METRIC)
        else:
            names = ", ".join(f"{gpu.index} {gpu.name} {gpu.uuid}" for gpu in self.gpus)
            log.info(
                "watching %d GPU(s) (%s): %s", len(self.gpus), self.selection.describe(), names
            )

    def _find_gpus(self) -> str:
        try:
            nvml = self.load_nvml()
        except ImportError as error:
            return f"nvidia-ml-py is not installed ({error})"
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as error:
            return f"NVML init failed: {error}"
        except OSError as error:  # a libnvidia-ml.so that does not load
            return f"NVML init failed: {error}"
        self.nvml = nvml
        try:
            self.driver_version = _text(nvml.nvmlSystemGetDriverVersion())
            listed = [self._describe(nvml, index) for index in range(nvml.nvmlDeviceGetCount())]
        except nvml.NVMLError as error:
            return f"NVML cannot list the GPUs: {error}"
        if not listed:
            return "NVML lists no GPU on this node"
        by_device = {gpu.device: gpu for gpu in listed}
        chosen, unmatched = select(list(by_device), self.selection)
        if unmatched:
            log.warning(
                "%s: %s match no GPU NVML lists (%s)",
                self.selection.describe(),
                ", ".join(unmatched),
                ", ".join(f"index {gpu.index} minor {gpu.minor} {gpu.uuid}" for gpu in listed),
            )
        self.gpus = [by_device[device] for device in chosen]
        if not self.gpus:
            return f"{self.selection.describe()} names none of the {len(listed)} GPU(s) NVML lists"
        return ""

    @staticmethod
    def _describe(nvml: ModuleType, index: int) -> Gpu:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        try:
            minor: int | None = nvml.nvmlDeviceGetMinorNumber(handle)
        except nvml.NVMLError:
            minor = None
        try:
            pci_bus_id = _text(nvml.nvmlDeviceGetPciInfo(handle).busId)
        except nvml.NVMLError:
            pci_bus_id = ""
        return Gpu(
            handle=handle,
            index=index,
            minor=minor,
            uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
            name=_text(nvml.nvmlDeviceGetName(handle)),
            pci_bus_id=pci_bus_id,
        )

    # --- scrape -------------------------------------------------------------------------

    def record_xid(self, uuid: str, xid: int) -> None:
        with self._lock:
            self.last_xid[uuid] = xid
        log.warning("XID %d on GPU %s", xid, uuid)

    def _log_once(self, key: tuple[str, ...], message: str, *args: object) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.warning(message, *args)

    def collect(self) -> list[Metric]:
        visible = Metric(
            VISIBLE_METRIC,
            "GPUs this exporter watches for the job; 0 when none is visible (see reason).",
            "gauge",
        )
        visible.add_sample(
            VISIBLE_METRIC,
            {"Hostname": self.hostname, "hpc_job": self.job_id, "reason": self.reason},
            len(self.gpus),
        )
        info = Metric(INFO_METRIC, "The GPU exporter and how it chose the job's GPUs.", "gauge")
        info.add_sample(
            INFO_METRIC,
            {
                "exporter": EXPORTER_NAME,
                "selected_by": self.selection.describe(),
                "driver_version": self.driver_version,
            },
            1,
        )
        if not self.gpus or self.nvml is None:
            return [visible, info]
        families = {field: Metric(field.name, field.help, field.type) for field in DEVICE_FIELDS}
        processes = Metric(
            PROCESS_METRIC,
            "GPU memory used by one process of the job (in MiB).",
            "gauge",
        )
        for gpu in self.gpus:
            labels = gpu.labels(self.hostname, self.job_id)
            for field, value in self._device_values(gpu).items():
                families[field].add_sample(field.name, labels, value)
            for pid, name, used in self._job_processes(gpu):
                processes.add_sample(
                    PROCESS_METRIC, {**labels, "pid": str(pid), "process": name}, used
                )
        return [*families.values(), processes, visible, info]

    def _device_values(self, gpu: Gpu) -> dict[Field, float]:
        assert self.nvml is not None
        values: dict[Field, float] = {}
        for reader in READERS:
            try:
                values.update(reader(self.nvml, gpu.handle))
            except self.nvml.NVMLError as error:
                self._log_once(
                    (reader.__name__, gpu.uuid, str(error)),
                    "GPU %s: %s left out (%s)",
                    gpu.uuid,
                    reader.__name__.removeprefix("read_"),
                    error,
                )
        with self._lock:
            values[XID] = self.last_xid.get(gpu.uuid, 0)
        return values

    def _job_processes(self, gpu: Gpu) -> Iterable[tuple[int, str, float]]:
        assert self.nvml is not None
        try:
            running = self.nvml.nvmlDeviceGetComputeRunningProcesses(gpu.handle)
        except self.nvml.NVMLError as error:
            self._log_once(
                ("processes", gpu.uuid, str(error)),
                "GPU %s: per-process memory left out (%s)",
                gpu.uuid,
                error,
            )
            return []
        found = []
        for process in running:
            # usedGpuMemory is None where NVML cannot tell (MIG, some drivers).
            if process.usedGpuMemory is None or not self.processes.belongs(process.pid):
                continue
            found.append(
                (process.pid, self.processes.name(process.pid), process.usedGpuMemory // MIB)
            )
        return found
