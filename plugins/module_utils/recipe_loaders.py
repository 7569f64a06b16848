# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""Recipes: load, validate and normalize the three YAML files a session starts from.

One schema covers the current format and the seed-era one (top-level `service:` / `client:`
with `resources`, `environment`, `ports`, `health_check`, `enable_cadvisor`, `cadvisor_port`,
`parameters`, `target_service`, `monitoring_targets`). Every value is checked (type, range,
unit, length) and every problem is one line that names the file and the key. The shared keys
live in recipe_resources, the Prometheus recipe in recipe_prometheus, the client's parameters
in recipe_client. Nothing here imports Ansible: the `recipes` action plugin and the CLI share it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_client import (
    SEED_CLIENT_PARAMETERS,
    bench_rules,
    client_parameters,
    planned_load_seconds,
    time_limit_notes,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_prometheus import (
    load_prometheus,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_resources import (
    CONTAINER,
    INSTALL,
    RESOURCES,
    command_list,
    environment,
    install_schema,
    install_settings,
    not_run_notes,
    program_path,
    resources_of,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_schema import (
    Checker,
    RecipeError,
    any_mapping,
    boolean,
    free_text,
    integer_in,
    list_of,
    mapping,
    matching,
    memory,
    number_in,
    one_of,
    port,
    safe_name,
    shown,
    text,
    text_of,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_yaml import read_recipe

SERVICE_TYPES: dict[str, dict[str, Any]] = {
    "ollama": {"port": 11434, "api": "ollama", "health_path": "/api/version"},
    "redis": {"port": 6379, "api": "redis", "health_path": ""},
    "llamacpp": {"port": 8000, "api": "openai", "health_path": "/v1/models"},
    # --- issue 10: databases (roles postgres_service, mariadb_service, chroma_service) -----
    # db_exporter_port: the service's own Prometheus exporter beside the sidecar (Debian's
    # prometheus-postgres-exporter, prometheus-mysqld-exporter); Chroma has none.
    "postgres": {"port": 5432, "api": "postgres", "health_path": "", "db_exporter_port": 9187},
    "mariadb": {"port": 3306, "api": "mysql", "health_path": "", "db_exporter_port": 9104},
    "chroma": {"port": 8000, "api": "chroma", "health_path": "/api/v2/heartbeat"},
}
# Other names of a type (the seed's `mysql` recipes are served by MariaDB).
SERVICE_TYPE_ALIASES = {"mysql": "mariadb", "postgresql": "postgres"}
# Services whose clients must speak their API, and how messages name them.
SERVICE_TITLES = {
    "redis": "Redis",
    "postgres": "Postgres",
    "mariadb": "MariaDB",
    "chroma": "Chroma",
}
# --- end issue 10 ---------------------------------------------------------------------------
EXPORTERS = {
    "cadvisor": {"port": 8080, "job_suffix": "cadvisor"},
    "process_exporter": {"port": 9256, "job_suffix": "process-exporter"},
    "node_exporter": {"port": 9100, "job_suffix": "node-exporter"},
    "none": {"port": 0, "job_suffix": ""},
}
CLIENT_METRICS_PORT = 9101
CLIENT_APIS = ("ollama", "openai", "http", "redis", "postgres", "mysql", "chroma")


# --- the schema -----------------------------------------------------------------------------

# What each role can do with `install:` (its <prefix>_install_method choices and the variables of
# INSTALL_VARS in its meta/argument_specs.yml). llamacpp_service runs llama_cpp.server from
# llamacpp_service_python and takes no install settings.
INSTALL_BY_PROGRAM: dict[str, Checker] = {
    "ollama": INSTALL,
    "redis": install_schema(("binary", "apptainer", "module"), ("binary", "image", "module")),
}
HEALTH_CHECK = mapping(
    {
        "endpoint": text_of(2048),
        "timeout": integer_in(0, 86400),
        "retries": integer_in(0, 1000),
        "interval": integer_in(0, 3600),
    }
)
COMMON_SERVICE_KEYS: dict[str, Checker] = {
    "name": safe_name,
    "type": one_of(*SERVICE_TYPES, *SERVICE_TYPE_ALIASES),
    "description": free_text,
    "container_image": text,
    "container": CONTAINER,
    "install": INSTALL,
    "command": program_path,
    "args": list_of(text, max_items=64),
    "build_commands": command_list,
    "enable_cadvisor": boolean,
    "cadvisor_port": port,
    "exporter": one_of(*EXPORTERS),
    "exporter_port": port,
    "resources": RESOURCES,
    "environment": environment,
    "ports": list_of(port, max_items=16),
    "port": port,
    "health_check": HEALTH_CHECK,
}
# An Ollama keep_alive: a Go duration (5m, 1h30m), seconds, or a negative number (for ever).
KEEP_ALIVE = r"-?\d{1,9}|-?(?:\d{1,9}(?:\.\d{1,9})?(?:ns|us|µs|ms|s|m|h)){1,6}"


def keep_alive(value: Any, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    string = text_of(64)(value, where).strip()
    if not re.fullmatch(KEEP_ALIVE, string):
        raise RecipeError(f"{where}: expected a duration such as 5m, 1h or -1, got {shown(value)}")
    return string


SERVICE_KEYS_BY_TYPE: dict[str, dict[str, Checker]] = {
    "ollama": {
        "model": text_of(256),
        "models_dir": text,
        "num_parallel": integer_in(1, 1024),
        "keep_alive": keep_alive,
        "gpu": boolean,
    },
    "redis": {
        # redis.conf quotes it (to_json): printable ASCII survives that unchanged.
        "password": text_of(512),
        "maxmemory": memory,
        "persistence": boolean,
    },
    "llamacpp": {
        "model": text_of(256),
        "model_path": text,
        "n_ctx": integer_in(1, 1 << 20),
        "n_threads": integer_in(1, 1024),
        "n_gpu_layers": integer_in(-1, 100_000),  # issue 11: layers offloaded to the GPU (-1: all)
        # llama_cpp.server --chat_format (gemma, chatml...): a GGUF without a chat template
        # otherwise falls back to llama-2's, and Gemma answers nothing (issue 8)
        "chat_format": matching(r"[A-Za-z0-9_.-]{1,64}", "a chat format such as gemma or chatml"),
    },
    # issue 10: the databases (passwords and tokens are generated per session when not given)
    "postgres": {
        # postgres_exporter 0.11 cannot parse its DSN with a quote, backslash or space in it
        "password": matching(r"[^'\\\s\x00-\x1f]{1,512}", "a password without ', \\ or spaces"),
        "max_connections": integer_in(1, 100_000),
        "shared_buffers": memory,
    },
    "mariadb": {
        "password": text_of(512),
        "max_connections": integer_in(1, 100_000),
        "innodb_buffer_pool_size": memory,
    },
    # chromadb accepts tokens of letters, digits and punctuation only
    "chroma": {"token": matching(r"[!-~]{1,512}", "a token of letters, digits and punctuation")},
}
CLIENT_KEYS: dict[str, Checker] = {
    "name": safe_name,
    "description": free_text,
    "api": one_of(*CLIENT_APIS),
    "duration": integer_in(1, 30 * 86400),
    "container_image": text,
    "container": CONTAINER,
    "resources": RESOURCES,
    "environment": environment,
    "parameters": any_mapping,  # checked by the benchmark client's own rules (recipe_client)
    "target_service": mapping(
        {"name": text_of(256), "port": port, "health_check_endpoint": text_of(2048)}
    ),
    "script": mapping({"name": text, "local_path": text, "remote_path": text}),
    "build_commands": command_list,
    "output": mapping({"file": text, "shared_dir": text}),
    "metrics_port": port,
    "linger": integer_in(0, 86400),
    # run --wait fails the session below this share of succeeded requests (issue 12 item 4)
    "min_success_rate": number_in(0, 1),
}
# A session whose client saw more failures than this is not about the service any more.
DEFAULT_MIN_SUCCESS_RATE = 0.95


# --- loading --------------------------------------------------------------------------------


def program_stem(name: str) -> str:
    """What a name or program says the service is: llama-server -> llamaserver."""
    return Path(name).name.lower().replace(".", "").replace("-", "").replace("_", "")


def service_of(hint: str) -> str | None:
    stem = program_stem(hint)
    for service_type, stems in (
        ("redis", ("redis",)),
        ("llamacpp", ("llamacpp", "llamaserver")),
        ("ollama", ("ollama",)),
        ("postgres", ("postgres", "pgsql")),  # issue 10
        ("mariadb", ("mysql", "mariadb")),
        ("chroma", ("chroma",)),
    ):
        if stem.startswith(stems):
            return service_type
    return None


def infer_service_type(body: dict, where: str) -> str:
    if "type" in body:
        given = one_of(*SERVICE_TYPES, *SERVICE_TYPE_ALIASES)(body["type"], f"{where}.type")
        return SERVICE_TYPE_ALIASES.get(given, given)
    for hint in (body.get("name"), body.get("command")):
        if isinstance(hint, str) and service_of(hint):
            return service_of(hint)
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


def check_command(recipe: dict, service_type: str, where: str) -> None:
    """`command` names the service's own program (seed recipes: `command: ollama`), never
    another one: the role starts the service itself, so anything else would not run."""
    command = recipe.get("command")
    if command and service_of(command) != service_type:
        raise RecipeError(
            f"{where}.command: {shown(command)} is not the {service_type} program; the "
            f"{service_type}_service role starts {service_type} itself (another build of it "
            "goes in install.binary)"
        )


def service_port(recipe: dict, service_type: str, where: str) -> int | None:
    """port, else the first of ports, else (Ollama) the port of OLLAMA_HOST."""
    given = recipe.get("port") or (recipe.get("ports") or [None])[0]
    host = recipe.get("environment", {}).get("OLLAMA_HOST", "")
    if given is None and service_type == "ollama" and host:
        number = host.rsplit(":", 1)[-1] if ":" in host else ""
        if number.isdigit():
            return port(int(number), f"{where}.environment.OLLAMA_HOST")
    return given


def load_service(path: Path) -> dict:
    _, body = read_recipe(path, ("service",))
    where = f"{path}: service"
    if str(body.get("name", "")).lower() == "prometheus":
        raise RecipeError(f"{path}: this is a Prometheus recipe; pass it as the third recipe")
    service_type = infer_service_type(body, where)
    schema = {**COMMON_SERVICE_KEYS, **SERVICE_KEYS_BY_TYPE[service_type]}
    if service_type in INSTALL_BY_PROGRAM:
        schema["install"] = INSTALL_BY_PROGRAM[service_type]
    else:
        del schema["install"]
    recipe = mapping(schema)(body, where)
    if "name" not in recipe:
        raise RecipeError(f"{where}.name: missing (a short name such as {service_type})")
    check_command(recipe, service_type, where)
    defaults = SERVICE_TYPES[service_type]
    exporter = recipe.get("exporter") or (
        "cadvisor" if recipe.get("enable_cadvisor", True) else "none"
    )
    exporter_port = recipe.get("exporter_port") or (
        recipe.get("cadvisor_port") if exporter == "cadvisor" else None
    )
    health = recipe.get("health_check", {})
    warnings = not_run_notes(recipe, where)
    install = install_settings(recipe)
    if install and service_type not in INSTALL_BY_PROGRAM:
        key = "container.image_path" if install["method"] == "apptainer" else "command"
        warnings.append(
            f"{where}.{key}: not used; the {service_type}_service role provides the "
            f"{service_type} program itself"
        )
        install = {}
    if recipe.get("container_image"):
        warnings.append(
            f"{where}.container_image: not used; container.image_path (or install.image) "
            "names the image to run"
        )
    if recipe.get("args"):
        warnings.append(
            f"{where}.args: not passed; the {service_type}_service role builds the "
            f"{service_type} command line from the recipe's keys"
        )
    return {
        "kind": "service",
        "source": str(path),
        "name": recipe["name"],
        "type": service_type,
        "role": f"hpcansible.hpc.{service_type}_service",
        "api": defaults["api"],
        "port": service_port(recipe, service_type, where) or defaults["port"],
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
        "environment": recipe.get("environment", {}),
        "install": install,
        "args": recipe.get("args", []),
        "settings": {
            name: recipe[name] for name in SERVICE_KEYS_BY_TYPE[service_type] if name in recipe
        },
        "warnings": warnings,
    }


def load_client(path: Path) -> dict:
    _, body = read_recipe(path, ("client",))
    where = f"{path}: client"
    recipe = mapping(CLIENT_KEYS)(body, where)
    raw = dict(recipe.get("parameters") or {})
    warnings = not_run_notes(recipe, where)
    if "duration" in recipe:
        # any name of requests or duration (num_operations too: issue 10's seed recipes)
        if {SEED_CLIENT_PARAMETERS.get(key, key) for key in raw} & {"duration", "requests"}:
            warnings.append(
                f"{where}.duration: not used; parameters bound the run (requests or duration)"
            )
        else:
            raw["duration"] = recipe["duration"]
    parameters, notes = client_parameters(raw, f"{where}.parameters", recipe.get("api"))
    warnings += notes
    for key in ("container", "container_image"):
        if key in recipe:
            warnings.append(
                f"{where}.{key}: not used; the project's own client is staged into the job"
            )
    if recipe.get("output"):
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
        "min_success_rate": recipe.get("min_success_rate", DEFAULT_MIN_SUCCESS_RATE),
        "warnings": warnings,
    }


def check_pairing(service: dict, client: dict, prometheus: dict | None = None) -> None:
    """The client must aim at this session's service; fill in what it leaves open; warn where
    a job's time limit is shorter than the client's planned load (recipe_client)."""
    target = client["target_service"]
    where = f"{client['source']}: client"
    if target.get("name") and target["name"] != service["name"]:
        raise RecipeError(
            f"{where}.target_service.name: {shown(target['name'])} but the service recipe "
            f"{service['source']} starts {service['name']!r}"
        )
    if target.get("port") and target["port"] != service["port"]:
        raise RecipeError(
            f"{where}.target_service.port: {target['port']} but the service listens on "
            f"{service['port']}"
        )
    if client["api"] is None:
        client["api"] = service["api"]
        # The client's rules that depend on the API (Ollama needs a model, say), now it is known.
        bench = bench_rules(f"{where}.parameters")
        try:
            bench.check_parameters(client["parameters"], f"{where}.parameters", api=client["api"])
        except bench.UserError as error:
            raise RecipeError(str(error)) from None
    elif service["type"] in SERVICE_TITLES and client["api"] != service["api"]:
        title = SERVICE_TITLES[service["type"]]
        raise RecipeError(f"{where}.api: a {title} service needs api: {service['api']}")
    if prometheus is not None:
        session_jobs = {
            service["exporter_job"]: "the service's exporter",
            client["name"]: "the client",
        }
        for index, config in enumerate(prometheus["extra_scrape_configs"]):
            if config["job_name"] in session_jobs:
                raise RecipeError(
                    f"{prometheus['source']}: extra_scrape_configs[{index}].job_name: "
                    f"{config['job_name']!r} is the job name of {session_jobs[config['job_name']]}"
                )
    load_s = planned_load_seconds(client["parameters"], client["api"])
    service["warnings"].extend(time_limit_notes(service, client, load_s))


LOADERS = {"service": load_service, "client": load_client, "prometheus": load_prometheus}
