# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""The map from normalized recipes to the role variables they set, and notes on what is not used."""

from __future__ import annotations

from typing import Any

from ansible_collections.hpcansible.hpc.plugins.module_utils.gpu import (
    GPU_EXPORTER_PORT,
    asks_for_gpus,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_loaders import (
    CLIENT_METRICS_PORT,
    SERVICE_TYPES,
)

INSTALL_VARS = {
    "method": "install_method",
    "binary": "binary",
    "url": "download_url",
    "sha256": "checksum",
    "image": "apptainer_image",
    "module": "module",
    "version": "version",
    "gpu": "gpu",
}
SERVICE_SETTING_VARS = {
    "ollama": {
        "model": "model",
        "models_dir": "models_dir",
        "num_parallel": "num_parallel",
        "keep_alive": "keep_alive",
        "gpu": "gpu",
    },
    "redis": {"password": "password", "maxmemory": "maxmemory", "persistence": "persistence"},
    "llamacpp": {
        "model": "model_alias",
        "model_path": "model_path",
        "n_ctx": "n_ctx",
        "n_threads": "n_threads",
        "n_gpu_layers": "n_gpu_layers",
        "chat_format": "chat_format",
    },
    # issue 10: the databases
    "postgres": {
        "password": "password",
        "max_connections": "max_connections",
        "shared_buffers": "shared_buffers",
    },
    "mariadb": {
        "password": "password",
        "max_connections": "max_connections",
        "innodb_buffer_pool_size": "innodb_buffer_pool_size",
    },
    "chroma": {"token": "token"},
}


def install_vars(
    prefix: str, install: dict, program: str, site_programs: list[str], where: str
) -> tuple[dict, list[str]]:
    """Role variables for how a program is provided; the site profile wins where it provides it."""
    if not install:
        return {}, []
    if program in site_programs:
        return {}, [
            f"{where}: the site profile provides {program}; the recipe's "
            f"{install.get('method', 'install')} settings are not used here"
        ]
    return {f"{prefix}_{INSTALL_VARS[key]}": value for key, value in install.items()}, []


def role_vars(recipes: dict, site_programs: list[str] = ()) -> tuple[dict, list[str]]:
    """Every role variable the three recipes set, by name, and notes on what was not used."""
    service, client, prometheus = recipes["service"], recipes["client"], recipes["prometheus"]
    prefix = f"{service['type']}_service"
    variables: dict[str, Any] = {
        f"{prefix}_name": service["name"],
        f"{prefix}_port": service["port"],
        f"{prefix}_environment": service["environment"],
        f"{prefix}_resources": service["resources"],
        f"{prefix}_health_timeout": service["health_timeout"],
        "cadvisor_exporter": service["exporter"],
    }
    if service["exporter"] != "none":
        variables["cadvisor_port"] = service["exporter_port"]
    # Issue 11: a GPU service's job also serves GPU metrics; its port is one of the session's
    # *_port variables, so that two sessions on one node get different ones.
    if asks_for_gpus(service["resources"]):
        variables["cadvisor_gpu_port"] = GPU_EXPORTER_PORT
    # issue 10: a database's own exporter beside the sidecar; a *_port, shifted like the others
    if "db_exporter_port" in SERVICE_TYPES[service["type"]]:
        variables[f"{prefix}_exporter_port"] = SERVICE_TYPES[service["type"]]["db_exporter_port"]
    for setting, value in service["settings"].items():
        variables[f"{prefix}_{SERVICE_SETTING_VARS[service['type']][setting]}"] = value
    installed, notes = install_vars(
        prefix,
        service["install"],
        service["type"],
        list(site_programs),
        f"{service['source']}: service",
    )
    variables.update(installed)
    parameters = dict(client["parameters"])
    variables.update(
        {
            "benchmark_client_name": client["name"],
            "benchmark_client_api": client["api"],
            "benchmark_client_resources": client["resources"],
            "benchmark_client_environment": client["environment"],
        }
    )
    if "wait_for_service" in parameters:
        variables["benchmark_client_wait_for_service"] = parameters.pop("wait_for_service")
    if "linger" in parameters:
        variables["benchmark_client_linger"] = parameters.pop("linger")
    variables["benchmark_client_parameters"] = parameters
    variables["benchmark_client_metrics_port"] = client["metrics_port"] or CLIENT_METRICS_PORT
    if client["linger"] is not None:
        variables["benchmark_client_linger"] = client["linger"]
    variables.update(
        {
            "prometheus_port": prometheus["port"],
            "prometheus_scrape_interval": prometheus["scrape_interval"],
            "prometheus_evaluation_interval": prometheus["evaluation_interval"],
            "prometheus_retention_time": prometheus["retention"],
            "prometheus_resources": prometheus["resources"],
            "prometheus_environment": prometheus["environment"],
            "prometheus_static_targets": prometheus["static_targets"],
            "prometheus_extra_scrape_configs": prometheus["extra_scrape_configs"],
        }
    )
    if prometheus.get("scrape_timeout"):
        variables["prometheus_scrape_timeout"] = prometheus["scrape_timeout"]
    if prometheus["retention_size"]:
        variables["prometheus_retention_size"] = prometheus["retention_size"]
    installed, more = install_vars(
        "prometheus",
        prometheus["install"],
        "prometheus",
        list(site_programs),
        f"{prometheus['source']}: prometheus",
    )
    variables.update(installed)
    return variables, notes + more
