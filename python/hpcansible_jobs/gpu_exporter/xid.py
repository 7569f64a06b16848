"""XID errors (the driver's GPU error codes) as NVML events, for DCGM_FI_DEV_XID_ERRORS.

NVML delivers them through an event set that a thread waits on; the collector serves the last
XID of each GPU (0 until one happens), as dcgm-exporter does. A GPU that cannot report them
(NVML_ERROR_NOT_SUPPORTED, as on some consumer boards) keeps 0 and is logged once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from types import ModuleType

from hpcansible_jobs.gpu_exporter.collector import Gpu

log = logging.getLogger("hpcansible_jobs.gpu_exporter")

WAIT_MS = 1000


def watch_xids(
    nvml: ModuleType,
    gpus: Sequence[Gpu],
    on_xid: Callable[[str, int], None],
    stop: threading.Event,
) -> None:
    try:
        events = nvml.nvmlEventSetCreate()
    except nvml.NVMLError as error:
        log.warning("XID events unavailable (%s); DCGM_FI_DEV_XID_ERRORS stays 0", error)
        return
    registered = []
    for gpu in gpus:
        try:
            nvml.nvmlDeviceRegisterEvents(gpu.handle, nvml.nvmlEventTypeXidCriticalError, events)
            registered.append(gpu)
        except nvml.NVMLError as error:
            log.warning("GPU %s: XID events unavailable (%s); its XID stays 0", gpu.uuid, error)
    try:
        while registered and not stop.is_set():
            try:
                data = nvml.nvmlEventSetWait_v2(events, WAIT_MS)
            except nvml.NVMLError_Timeout:
                continue
            except nvml.NVMLError as error:
                log.warning("waiting for XID events failed (%s); no more XIDs are read", error)
                return
            if data.eventType & nvml.nvmlEventTypeXidCriticalError:
                on_xid(_uuid_of(nvml, data.device), int(data.eventData))
    finally:
        with contextlib.suppress(nvml.NVMLError):
            nvml.nvmlEventSetFree(events)


def _uuid_of(nvml: ModuleType, handle: object) -> str:
    uuid = nvml.nvmlDeviceGetUUID(handle)
    return uuid.decode() if isinstance(uuid, bytes) else str(uuid)


def start_xid_thread(
    nvml: ModuleType, gpus: Sequence[Gpu], on_xid: Callable[[str, int], None]
) -> threading.Event:
    stop = threading.Event()
    threading.Thread(
        target=watch_xids, args=(nvml, gpus, on_xid, stop), name="xid-events", daemon=True
    ).start()
    return stop
