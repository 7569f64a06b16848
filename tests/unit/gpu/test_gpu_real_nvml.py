"""The exporter on a real GPU, through the real NVML; skipped where no GPU is visible.

On a GPU machine this reads every metric from the driver and checks that the figures are
physical (utilisation 0-100 %, memory used + free within the board's total, power above 0).
The load test with PyTorch is tests/gpu/verify_gpu_exporter.py.
"""

from __future__ import annotations

import pytest
from hpcansible_jobs.gpu_exporter.collector import GpuCollector
from hpcansible_jobs.gpu_exporter.exposition import render
from hpcansible_jobs.gpu_exporter.selection import job_selection
from prometheus_client.parser import text_string_to_metric_families

pynvml = pytest.importorskip("pynvml", reason="nvidia-ml-py is not installed (pip install .[gpu])")


@pytest.fixture(scope="module")
def real_nvml():
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        pytest.skip(f"no GPU visible: NVML init failed ({error})")
    if pynvml.nvmlDeviceGetCount() == 0:
        pytest.skip("no GPU visible: NVML lists none")
    yield pynvml
    pynvml.nvmlShutdown()


def test_every_gpu_metric_reads_physical_figures(real_nvml):
    collector = GpuCollector(job_selection({}), job_id="real", hostname="here")
    collector.start()
    assert collector.reason == ""
    samples = {
        family.name: [sample.value for sample in family.samples]
        for family in text_string_to_metric_families(render(collector.collect()).decode())
    }
    count = len(collector.gpus)
    assert samples["hpcansible_gpu_visible"] == [count]
    for name in ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL"):
        assert len(samples[name]) == count and all(0 <= value <= 100 for value in samples[name])
    for gpu, used, free in zip(
        collector.gpus, samples["DCGM_FI_DEV_FB_USED"], samples["DCGM_FI_DEV_FB_FREE"], strict=True
    ):
        total_mib = real_nvml.nvmlDeviceGetMemoryInfo(gpu.handle).total / 2**20
        assert 0 < used + free <= total_mib
    assert all(value > 0 for value in samples.get("DCGM_FI_DEV_POWER_USAGE", []))
    assert all(value > 0 for value in samples["DCGM_FI_DEV_SM_CLOCK"])
