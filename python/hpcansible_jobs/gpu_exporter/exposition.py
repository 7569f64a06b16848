"""The Prometheus text format (0.0.4), with dcgm-exporter's names kept as they are.

prometheus-client's own generate_latest appends `_total` to every counter's name; dcgm-exporter
serves DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION as a counter without it, and queries written for
dcgm-exporter use that name. So the families are prometheus-client Metric objects, written
here unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _escape_value(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _format(value: float) -> str:
    """Whole numbers as integers (NVML's readings mostly are), as dcgm-exporter prints them."""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    return floatToGoString(value)


def render(metrics: Iterable[Metric]) -> bytes:
    lines: list[str] = []
    for metric in metrics:
        lines.append(f"# HELP {metric.name} {_escape_help(metric.documentation)}")
        lines.append(f"# TYPE {metric.name} {metric.type}")
        for sample in metric.samples:
            labels = ",".join(
                f'{name}="{_escape_value(str(value))}"' for name, value in sample.labels.items()
            )
            selector = f"{{{labels}}}" if labels else ""
            lines.append(f"{sample.name}{selector} {_format(sample.value)}")
    return ("\n".join(lines) + "\n").encode() if lines else b""
