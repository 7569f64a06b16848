# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Recipes: load, validate and normalize the three YAML files a session starts from.

One schema covers the current format and the seed-era one (top-level `service:` / `client:`
with `resources`, `environment`, `ports`, `health_check`, `enable_cadvisor`, `cadvisor_port`,
`parameters`, `target_service`, `monitoring_targets`). Every problem is one line that names
the file and the key. Nothing here imports Ansible: the `recipes` action plugin and the CLI share it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_schema import (
    Checker,
    RecipeError,
    any_mapping,
    anything,
    boolean,
    duration,
    integer,
    list_of,
    mapping,
    memory,
    one_of,
    port,
    safe_name,
    string_map,
    text,
    type_name,
)

SERVICE_TYPES: dict[str, dict[str, Any]] = {
    "ollama": {"port": 11434, "api": "ollama", "health_path": "/api/version"},
    "redis": {"port": 6379, "api": "redis", "health_path": ""},
    "llamacpp": {"port": 8000, "api": "openai", "health_path": "/v1/models"},
}
EXPORTERS = {
    "cadvisor": {"port": 8080, "job_suffix": "cadvisor"},
    "process_exporter": {"port": 9256, "job_suffix": "process-exporter"},
    "node_exporter": {"port": 9100, "job_suffix": "node-exporter"},
    "none": {"port": 0, "job_suffix": ""},
}
INSTALL_METHODS = ("binary", "download", "apptainer", "module")
CLIENT_METRICS_PORT = 9101


# --- the schema -----------------------------------------------------------------------------

RESOURCES = mapping(
    {
        "partition": text,
        "account": text,
        "qos": text,
        "time": text,
        "nodes": text,
        "ntasks": integer,
        "ntasks_per_node": integer,
        "cpus_per_task": integer,
        "mem": memory,
        "gres": text,
        "gpus": text,  # sbatch --gpus=[type:]count (issue 11, GPU services)
        "constraint": text,
        "nodelist": text,
        "exclude": text,
        "extra_args": list_of(text),
    }
)
CONTAINER = mapping({"docker_source": text, "image_path": text, "args": list_of(text)})
INSTALL_FIELDS: dict[str, Checker] = {
    "binary": text,
    "url": text,
    "sha256": text,
    "module": text,
    "image": text,
    "version": text,
    "gpu": boolean,
}


def install_schema(methods: tuple[str, ...], keys: tuple[str, ...]) -> Checker:
    return mapping({"method": one_of(*methods), **{key: INSTALL_FIELDS[key] for key in keys}})


INSTALL = install_schema(INSTALL_METHODS, tuple(INSTALL_FIELDS))
# What each role can do with `install:` (its <prefix>_install_method choices and the variables of
# INSTALL_VARS in its meta/argument_specs.yml). llamacpp_service runs llama_cpp.server from
# llamacpp_service_python and takes no install settings.
INSTALL_BY_PROGRAM: dict[str, Checker] = {
    "ollama": INSTALL,
    "redis": install_schema(("binary", "apptainer", "module"), ("binary", "image", "module")),
    "prometheus": install_schema(
        INSTALL_METHODS, ("binary", "url", "sha256", "image", "module", "version")
    ),
}
HEALTH_CHECK = mapping(
    {"endpoint": text, "timeout": integer, "retries": integer, "interval": integer}
)
MONITORING_TARGET = mapping(
    {"service_id": text, "host": text, "job_name": safe_name, "port": port, "metrics_path": text}
)
COMMON_SERVICE_KEYS: dict[str, Checker] = {
    "name": safe_name,
    "type": one_of(*SERVICE_TYPES),
    "description": text,
    "container_image": text,
    "container": CONTAINER,
    "install": INSTALL,
    "command": text,
    "args": list_of(text),
    "enable_cadvisor": boolean,
    "cadvisor_port": port,
    "exporter": one_of(*EXPORTERS),
    "exporter_port": port,
    "resources": RESOURCES,
    "environment": string_map,
    "ports": list_of(port),
    "port": port,
    "health_check": HEALTH_CHECK,
}
SERVICE_KEYS_BY_TYPE: dict[str, dict[str, Checker]] = {
    "ollama": {
        "model": text,
        "models_dir": text,
        "num_parallel": integer,
        "keep_alive": text,
        "gpu": boolean,
    },
    "redis": {"password": text, "maxmemory": memory, "persistence": boolean},
    "llamacpp": {
        "model": text,
        "model_path": text,
        "n_ctx": integer,
        "n_threads": integer,
        "n_gpu_layers": integer,  # issue 11: layers offloaded to the GPU (-1: all)
    },
}
CLIENT_KEYS: dict[str, Checker] = {
    "name": safe_name,
    "description": text,
    "api": one_of("ollama", "openai", "http", "redis"),
    "duration": integer,
    "container_image": text,
    "container": CONTAINER,
    "resources": RESOURCES,
    "environment": string_map,
    "parameters": any_mapping,  # checked against the benchmark client's own options
    "target_service": mapping({"name": text, "port": port, "health_check_endpoint": text}),
    "script": mapping({"name": text, "local_path": text, "remote_path": text}),
    "output": mapping({"file": text, "shared_dir": text}),
    "metrics_port": port,
    "linger": integer,
}
PROMETHEUS_KEYS: dict[str, Checker] = {
    "name": safe_name,
    "description": text,
    "port": port,
    "ports": list_of(port),
    "scrape_interval": duration,
    "evaluation_interval": duration,
    "retention": duration,
    "retention_size": text,
    "resources": RESOURCES,
    "environment": string_map,
    "monitoring_targets": list_of(MONITORING_TARGET),
    "extra_scrape_configs": list_of(anything),
    "container": CONTAINER,
    "container_image": text,
    "install": INSTALL_BY_PROGRAM["prometheus"],
    "enable_cadvisor": boolean,
    "cadvisor_port": port,
}

# Seed-era client parameters and the benchmark client option each one means.
SEED_CLIENT_PARAMETERS = {
    "num_requests": "requests",
    "num_operations": "requests",
    "operations_per_test": "requests",
    "concurrent_requests": "concurrency",
    "prompt_length": "input_tokens",
    "max_tokens": "output_tokens",
    "wait_for_service": "wait_for_service",
}
# Seed-era keys accepted for compatibility but without effect here, with the reason.
SEED_IGNORED = {
    "output_file": "results always go to the session directory",
    "test_persistence": "not measured by this client",
    "prompt_lengths": "sweeps over prompt length are not supported; use input_tokens",
}


# --- loading --------------------------------------------------------------------------------


def read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RecipeError(f"{path}: is a folder, not a recipe file") from None
    except PermissionError:
        raise RecipeError(f"{path}: not readable (permission denied)") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise RecipeError(f"{path}:{line}: {problem}") from None


def top_level(document: Any, path: Path, allowed: tuple[str, ...]) -> tuple[str, dict]:
    if not isinstance(document, dict) or not document:
        raise RecipeError(f"{path}: expected a mapping with a top-level '{allowed[0]}:' key")
    unknown = [key for key in document if key not in allowed]
    if unknown or len(document) != 1:
        keys = ", ".join(map(str, unknown or document))
        raise RecipeError(
            f"{path}: {keys}: expected exactly one top-level key, one of {', '.join(allowed)}"
        )
    key = next(iter(document))
    body = document[key]
    if not isinstance(body, dict):
        raise RecipeError(f"{path}: {key}: expected a mapping, got {type_name(body)}")
    return key, body


def infer_service_type(body: dict, where: str) -> str:
    if "type" in body:
        return one_of(*SERVICE_TYPES)(body["type"], f"{where}.type")
    hints = [str(body.get("name", "")), Path(str(body.get("command", ""))).name]
    for hint in hints:
        lowered = hint.lower().replace(".", "").replace("-", "").replace("_", "")
        if lowered.startswith("redis"):
            return "redis"
        if lowered.startswith("llamacpp") or lowered.startswith("llamaserver"):
            return "llamacpp"
        if lowered.startswith("ollama"):
            return "ollama"
    raise RecipeError(
        f"{where}.type: cannot tell which service this is; set type to one of "
        f"{', '.join(SERVICE_TYPES)}"
    )


def health_path(endpoint: str) -> str:
    """Seed-era health endpoints name localhost; only their path matters."""
    parts = urlsplit(endpoint)
    if parts.scheme in ("http", "https"):
        return parts.path or "/"
    return ""


def install_settings(body: dict) -> dict:
    """How the service's program is provided: the current `install:` or seed-era container/command."""
    install = dict(body.get("install", {}))
    image = body.get("container", {}).get("image_path")
    if not install and image:
        install = {"method": "apptainer", "image": image}
    if not install and body.get("command"):
        install = {"method": "binary", "binary": body["command"]}
    return install


def resources_of(body: dict) -> dict:
    resources = dict(body.get("resources", {}))
    if "ntasks_per_node" in resources:
        extra = list(resources.get("extra_args", []))
        extra.append(f"--ntasks-per-node={resources.pop('ntasks_per_node')}")
        resources["extra_args"] = extra
    return resources


def load_service(path: Path) -> dict:
    _, body = top_level(read_yaml(path), path, ("service",))
    where = f"{path}: service"
    if str(body.get("name", "")).lower() == "prometheus":
        raise RecipeError(f"{path}: this is a Prometheus recipe; pass it as the third recipe")
    service_type = infer_service_type(body, where)
    schema = {**COMMON_SERVICE_KEYS, **SERVICE_KEYS_BY_TYPE[service_type]}
    if service_type in INSTALL_BY_PROGRAM:
        schema["install"] = INSTALL_BY_PROGRAM[service_type]
    else:
        del schema["install"]
    if "name" not in body:
        raise RecipeError(f"{where}.name: missing (a short name such as {service_type})")
    recipe = mapping(schema)(body, where)
    defaults = SERVICE_TYPES[service_type]
    environment = recipe.get("environment", {})
    service_port = recipe.get("port") or (recipe.get("ports") or [None])[0]
    if service_port is None and service_type == "ollama" and "OLLAMA_HOST" in environment:
        host_port = environment["OLLAMA_HOST"].rsplit(":", 1)[-1]
        service_port = int(host_port) if host_port.isdigit() else None
    exporter = recipe.get("exporter") or (
        "cadvisor" if recipe.get("enable_cadvisor", True) else "none"
    )
    exporter_port = recipe.get("exporter_port") or (
        recipe.get("cadvisor_port") if exporter == "cadvisor" else None
    )
    health = recipe.get("health_check", {})
    warnings = []
    install = install_settings(recipe)
    if install and service_type not in INSTALL_BY_PROGRAM:
        key = "container.image_path" if install["method"] == "apptainer" else "command"
        warnings.append(
            f"{where}.{key}: not used; the {service_type}_service role provides the "
            f"{service_type} program itself"
        )
        install = {}
    if recipe.get("container", {}).get("docker_source"):
        warnings.append(
            f"{where}.container.docker_source: not pulled here; build the Apptainer image once "
            "on the login node (apptainer pull) and set container.image_path"
        )
    return {
        "kind": "service",
        "source": str(path),
        "name": recipe["name"],
        "type": service_type,
        "role": f"hpcansible.hpc.{service_type}_service",
        "api": defaults["api"],
        "port": service_port or defaults["port"],
        "health_path": health_path(health.get("endpoint", "")) or defaults["health_path"],
        "health_timeout": max(
            health.get("timeout", 0), health.get("retries", 0) * health.get("interval", 0), 60
        ),
        "exporter": exporter,
        "exporter_port": exporter_port or EXPORTERS[exporter]["port"],
        "exporter_job": f"{recipe['name']}-{EXPORTERS[exporter]['job_suffix']}"
        if exporter != "none"
        else "",
        "resources": resources_of(recipe),
        "environment": environment,
        "install": install,
        "args": recipe.get("args", []),
        "settings": {
            name: recipe[name] for name in SERVICE_KEYS_BY_TYPE[service_type] if name in recipe
        },
        "warnings": warnings,
    }


def client_parameters(
    parameters: dict, where: str, known_options: Mapping[str, Any] | None
) -> tuple[dict, list[str]]:
    """Map seed-era parameter names to the client's options; reject what neither knows."""
    options, warnings = {}, []
    for name, value in parameters.items():
        if name in SEED_IGNORED:
            warnings.append(f"{where}.{name}: ignored ({SEED_IGNORED[name]})")
            continue
        option = SEED_CLIENT_PARAMETERS.get(name, name)
        if option in ("wait_for_service", "linger"):
            options[option] = integer(value, f"{where}.{name}")
            continue
        if known_options is not None and option not in known_options:
            hint = difflib.get_close_matches(name, [*known_options, *SEED_CLIENT_PARAMETERS], n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise RecipeError(f"{where}.{name}: unknown benchmark parameter{suggestion}")
        if option in ("endpoint", "output", "api", "session_id", "metrics_port"):
            raise RecipeError(f"{where}.{name}: set by the session; remove it from the recipe")
        options[option] = value
    return options, warnings


def load_client(path: Path, known_options: Mapping[str, Any] | None = None) -> dict:
    _, body = top_level(read_yaml(path), path, ("client",))
    where = f"{path}: client"
    recipe = mapping(CLIENT_KEYS)(body, where)
    parameters, warnings = client_parameters(
        body.get("parameters") or {}, f"{where}.parameters", known_options
    )
    if "duration" in recipe and "duration" not in parameters and "requests" not in parameters:
        parameters["duration"] = recipe["duration"]
    for key in ("script", "container", "container_image"):
        if key in recipe:
            warnings.append(
                f"{where}.{key}: ignored; the project's own client is staged into the job"
            )
    output = recipe.get("output", {})
    if output:
        warnings.append(f"{where}.output: ignored; results go to the session directory")
    return {
        "kind": "client",
        "source": str(path),
        "name": recipe.get("name", "client"),
        "api": recipe.get("api"),
        "target_service": recipe.get("target_service", {}),
        "resources": resources_of(recipe),
        "environment": recipe.get("environment", {}),
        "parameters": parameters,
        "metrics_port": recipe.get("metrics_port"),
        "linger": recipe.get("linger"),
        "warnings": warnings,
    }


def load_prometheus(path: Path) -> dict:
    key, body = top_level(read_yaml(path), path, ("prometheus", "service"))
    where = f"{path}: {key}"
    if key == "service" and str(body.get("name", "")).lower() != "prometheus":
        raise RecipeError(
            f"{where}.name: expected 'prometheus' in the third recipe (got {body.get('name')!r}); "
            "the service recipe goes first"
        )
    recipe = mapping(PROMETHEUS_KEYS)(body, where)
    environment = dict(recipe.get("environment", {}))
    warnings = []
    retention = recipe.get("retention")
    if not retention and "PROMETHEUS_RETENTION_TIME" in environment:
        retention = duration(
            environment["PROMETHEUS_RETENTION_TIME"],
            f"{where}.environment.PROMETHEUS_RETENTION_TIME",
        )
    for variable in ("PROMETHEUS_RETENTION_TIME", "PROMETHEUS_STORAGE_PATH"):
        if variable in environment:
            environment.pop(variable)
            if variable == "PROMETHEUS_STORAGE_PATH":
                warnings.append(
                    f"{where}.environment.{variable}: ignored; the TSDB lives in the session directory"
                )
    static_targets = []
    for index, target in enumerate(recipe.get("monitoring_targets", [])):
        if "host" in target:
            if "port" not in target:
                raise RecipeError(f"{where}.monitoring_targets[{index}].port: missing")
            static_targets.append(
                {
                    "job_name": target.get("job_name", f"extra-{index}"),
                    "targets": [f"{target['host']}:{target['port']}"],
                    "metrics_path": target.get("metrics_path", "/metrics"),
                }
            )
        elif "service_id" in target:
            warnings.append(
                f"{where}.monitoring_targets[{index}]: service_id {target['service_id']!r} "
                "replaced by this session's service (filled in automatically)"
            )
    ports = recipe.get("ports") or []
    return {
        "kind": "prometheus",
        "source": str(path),
        "port": recipe.get("port") or (ports[0] if ports else 9090),
        "scrape_interval": recipe.get("scrape_interval", "5s"),
        "evaluation_interval": recipe.get(
            "evaluation_interval", recipe.get("scrape_interval", "5s")
        ),
        "retention": retention or "7d",
        "retention_size": recipe.get("retention_size", ""),
        "resources": resources_of(recipe),
        "environment": environment,
        "static_targets": static_targets,
        "extra_scrape_configs": recipe.get("extra_scrape_configs", []),
        "install": install_settings(recipe),
        "warnings": warnings,
    }


def check_pairing(service: dict, client: dict) -> None:
    """The client must aim at this session's service; fill in what it leaves open."""
    target = client["target_service"]
    if target.get("name") and target["name"] != service["name"]:
        raise RecipeError(
            f"{client['source']}: client.target_service.name: {target['name']!r} but the service "
            f"recipe {service['source']} starts {service['name']!r}"
        )
    if target.get("port") and target["port"] != service["port"]:
        raise RecipeError(
            f"{client['source']}: client.target_service.port: {target['port']} but the service "
            f"listens on {service['port']}"
        )
    if client["api"] is None:
        client["api"] = service["api"]
    elif service["type"] == "redis" and client["api"] != "redis":
        raise RecipeError(f"{client['source']}: client.api: a Redis service needs api: redis")


LOADERS = {"service": load_service, "client": load_client, "prometheus": load_prometheus}
