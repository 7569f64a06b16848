"""hpcansible's NVML GPU exporter: the GPU sidecar of a service job where no dcgm-exporter exists.

`python -m hpcansible_jobs.gpu_exporter --address ADDR --port 9400` serves, for the GPUs SLURM gave
the job, the metric names, units and labels of NVIDIA's dcgm-exporter (its default-counters.csv)
so that queries and dashboards written for dcgm-exporter work unchanged:

| metric | type | unit | NVML call |
|---|---|---|---|
| DCGM_FI_DEV_SM_CLOCK | gauge | MHz | nvmlDeviceGetClockInfo(NVML_CLOCK_SM) |
| DCGM_FI_DEV_GPU_TEMP | gauge | degrees C | nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU) |
| DCGM_FI_DEV_POWER_USAGE | gauge | W | nvmlDeviceGetPowerUsage (mW) / 1000 |
| DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION | counter | mJ | nvmlDeviceGetTotalEnergyConsumption |
| DCGM_FI_DEV_GPU_UTIL | gauge | % | nvmlDeviceGetUtilizationRates().gpu |
| DCGM_FI_DEV_MEM_COPY_UTIL | gauge | % | nvmlDeviceGetUtilizationRates().memory |
| DCGM_FI_DEV_FB_FREE, DCGM_FI_DEV_FB_USED | gauge | MiB | nvmlDeviceGetMemoryInfo |
| DCGM_FI_DEV_XID_ERRORS | gauge | last XID seen (0: none) | XID critical-error events |

Labels, as dcgm-exporter's: gpu (NVML index), UUID, pci_bus_id, device (nvidia<minor>),
modelName, Hostname, and hpc_job (the SLURM job id; dcgm-exporter's label for its HPC job
mapping). Beside them:

- hpcansible_gpu_process_memory_used_mib{<the labels>, pid, process}: GPU memory of each of
  the job's processes (nvmlDeviceGetComputeRunningProcesses), in MiB like DCGM_FI_DEV_FB_USED;
- hpcansible_gpu_visible{Hostname, hpc_job, reason}: how many GPUs it watches; 0 with the
  reason when none is visible (no nvidia-ml-py, no driver, NVML fails, or no GPU left after
  filtering). The exporter then logs "no GPU visible" once and keeps serving, so that the
  session goes on;
- hpcansible_gpu_exporter_info{exporter, selected_by, driver_version}: 1.

It needs only nvidia-ml-py and prometheus-client, and imports nothing else of hpcansible.
"""

EXPORTER_NAME = "hpcansible-nvml"
DEFAULT_PORT = 9400
