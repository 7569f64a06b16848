"""A fake NVML: the pynvml functions the GPU exporter calls, answered from a list of GPUs.

`install(monkeypatch, gpus)` replaces those functions in the real pynvml module (its error
classes and constants stay real), so the exporter runs its normal `import pynvml` path.
Each FakeGpu's `unsupported` names readers that raise NVMLError_NotSupported, as on boards
without power or energy sensors.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

pynvml = pytest.importorskip("pynvml", reason="nvidia-ml-py is not installed (pip install .[gpu])")

MIB = 1024 * 1024


@dataclass
class FakeGpu:
    uuid: str
    minor: int
    name: str = "NVIDIA H200"
    pci_bus_id: str = "00000000:18:00.0"
    sm_clock: int = 1395
    temperature: int = 41
    power_mw: int = 690_250
    energy_mj: int = 123_456_789
    utilization: int = 100
    memory_utilization: int = 37
    fb_used_mib: int = 1497
    fb_free_mib: int = 142_274
    processes: list[tuple[int, int | None]] = field(default_factory=list)  # (pid, bytes)
    unsupported: set[str] = field(default_factory=set)


def not_supported() -> Exception:
    return pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)


class FakeNvml:
    def __init__(self, gpus: list[FakeGpu], init_error: int | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.events: list[SimpleNamespace] = []
        self.event_ready = threading.Event()
        self.calls: list[str] = []

    def gpu(self, handle: object) -> FakeGpu:
        assert isinstance(handle, FakeGpu), f"not a handle of this fake: {handle!r}"
        return handle

    def reading(self, handle: object, name: str) -> FakeGpu:
        gpu = self.gpu(handle)
        self.calls.append(name)
        if name in gpu.unsupported:
            raise not_supported()
        return gpu

    # --- the pynvml functions ---------------------------------------------------------

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)

    def nvmlSystemGetDriverVersion(self) -> str:
        return "570.124.06"

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def nvmlDeviceGetMinorNumber(self, handle: object) -> int:
        return self.reading(handle, "minor").minor

    def nvmlDeviceGetPciInfo(self, handle: object) -> SimpleNamespace:
        return SimpleNamespace(busId=self.gpu(handle).pci_bus_id.encode())

    def nvmlDeviceGetUUID(self, handle: object) -> str:
        return self.gpu(handle).uuid

    def nvmlDeviceGetName(self, handle: object) -> str:
        return self.gpu(handle).name

    def nvmlDeviceGetClockInfo(self, handle: object, clock: int) -> int:
        assert clock == pynvml.NVML_CLOCK_SM
        return self.reading(handle, "clock").sm_clock

    def nvmlDeviceGetTemperature(self, handle: object, sensor: int) -> int:
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        return self.reading(handle, "temperature").temperature

    def nvmlDeviceGetPowerUsage(self, handle: object) -> int:
        return self.reading(handle, "power").power_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: object) -> int:
        return self.reading(handle, "energy").energy_mj

    def nvmlDeviceGetUtilizationRates(self, handle: object) -> SimpleNamespace:
        gpu = self.reading(handle, "utilization")
        return SimpleNamespace(gpu=gpu.utilization, memory=gpu.memory_utilization)

    def nvmlDeviceGetMemoryInfo(self, handle: object) -> SimpleNamespace:
        gpu = self.reading(handle, "memory")
        used, free = gpu.fb_used_mib * MIB + 12345, gpu.fb_free_mib * MIB + 999
        return SimpleNamespace(total=used + free, used=used, free=free)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: object) -> list[SimpleNamespace]:
        gpu = self.reading(handle, "processes")
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in gpu.processes]

    def nvmlEventSetCreate(self) -> str:
        return "event-set"

    def nvmlDeviceRegisterEvents(self, handle: object, types: int, events: object) -> None:
        assert types == pynvml.nvmlEventTypeXidCriticalError
        self.reading(handle, "events")

    def nvmlEventSetWait_v2(self, events: object, timeout_ms: int) -> SimpleNamespace:
        if self.events:
            return self.events.pop(0)
        self.event_ready.set()
        raise pynvml.NVMLError(pynvml.NVML_ERROR_TIMEOUT)

    def nvmlEventSetFree(self, events: object) -> None:
        pass


FUNCTIONS = [name for name in vars(FakeNvml) if name.startswith("nvml")]


def install(monkeypatch: pytest.MonkeyPatch, gpus: list[FakeGpu], **options) -> FakeNvml:
    fake = FakeNvml(gpus, **options)
    for name in FUNCTIONS:
        assert hasattr(pynvml, name), f"pynvml has no {name}: the exporter's NVML calls drifted"
        monkeypatch.setattr(pynvml, name, getattr(fake, name))
    return fake
