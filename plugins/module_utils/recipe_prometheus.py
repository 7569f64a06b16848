# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)
"""The Prometheus recipe: its keys, the structure of `extra_scrape_configs`, and promtool.

Scrape intervals are bounded (1s to 1h, a timeout never above its interval), and every extra
scrape config is checked key by key against Prometheus's scrape_config before anything is
submitted. Where promtool is on the controller's PATH, the config the recipe implies is also
checked with `promtool check config --syntax-only`, so that a mistake is one line now instead
of a failed step 4 after the service and client were started.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_resources import (
    CONTAINER,
    INSTALL_FIELDS,
    INSTALL_METHODS,
    RESOURCES,
    environment,
    install_schema,
    install_settings,
    not_run_notes,
    resources_of,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_schema import (
    Checker,
    RecipeError,
    boolean,
    duration,
    duration_in,
    duration_seconds,
    free_text,
    hostname,
    integer_in,
    key_name,
    list_of,
    mapping,
    matching,
    one_of,
    port,
    safe_name,
    shown,
    text,
    text_of,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_yaml import read_recipe

SCRAPE_INTERVAL = duration_in(1, 3600)
LABEL_NAME = matching(r"[a-zA-Z_][a-zA-Z0-9_]{0,127}", "a Prometheus label name")
URL_PATH = matching(r"/[^\s]{0,1023}", "a URL path such as /metrics", 1024)
SIZE = r"\d{1,12}(?:B|KB|MB|GB|TB|PB|EB)"
TARGET = r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\]):\d{1,5}"
RELABEL_ACTIONS = (
    "replace",
    "keep",
    "drop",
    "keepequal",
    "dropequal",
    "hashmod",
    "labelmap",
    "labeldrop",
    "labelkeep",
    "lowercase",
    "uppercase",
)
# The job names the session's own scrape configs take (service exporter and client come from
# their recipes and are compared in recipe_loaders.check_pairing).
SESSION_JOB_NAMES = ("prometheus",)


def label_values(value: Any, where: str) -> dict[str, str]:
    """labels: {name: value}; names as Prometheus takes them, not its reserved __names__."""
    if not isinstance(value, dict):
        raise RecipeError(f"{where}: expected a mapping of label names to values")
    result = {}
    for name, item in value.items():
        place = f"{where}.{key_name(name)}"
        if not isinstance(name, str) or name.startswith("__"):
            raise RecipeError(f"{place}: not a label name a scrape config may set")
        LABEL_NAME(name, place)
        result[name] = text_of(1024)(item, place)
    return result


def url_params(value: Any, where: str) -> dict[str, list[str]]:
    """params: {name: [values]} added to the scrape URL."""
    if not isinstance(value, dict):
        raise RecipeError(f"{where}: expected a mapping of URL parameters to lists of values")
    return {
        text_of(256)(name, f"{where}.{key_name(name)}"): list_of(text_of(1024), 100)(
            item, f"{where}.{key_name(name)}"
        )
        for name, item in value.items()
    }


STATIC_CONFIG = mapping(
    {
        "targets": list_of(matching(TARGET, "host:port", 300), 1000, wrap_scalar=False),
        "labels": label_values,
    },
    required=("targets",),
)
# Prometheus's own rule for file_sd paths: .json/.yml/.yaml, one * in the last part at most.
SD_FILE = matching(
    r"[^*]*(?:\*[^/]*)?\.(?:json|yml|yaml|JSON|YML|YAML)",
    "a .json, .yml or .yaml file (one * allowed in its name)",
    4096,
)
# Files Prometheus reads at start (TLS, credentials): Prometheus expands no $VARIABLE and reads
# a relative path from the session's config folder, where no such file is; so: absolute.
NODE_FILE = matching(r"/[^$]{1,4095}", "an absolute path (Prometheus expands no $VARIABLES)", 4096)
FILE_SD_CONFIG = mapping(
    {"files": list_of(SD_FILE, 100, wrap_scalar=False, min_items=1), "refresh_interval": duration},
    required=("files",),
)
RELABEL_FIELDS = mapping(
    {
        "source_labels": list_of(LABEL_NAME, 64, wrap_scalar=False),
        "separator": text_of(64),
        # Prometheus's relabelTarget: a label name, with $1 or ${name} from the regex's groups.
        "target_label": matching(
            r"(?:[A-Za-z_]|\$\{\w+\}|\$\w)(?:\w|\$\{\w+\}|\$\w)*", "a label name (may use $1)"
        ),
        "regex": text_of(4096),
        "modulus": integer_in(1, 2**63 - 1),
        "replacement": text_of(4096),
        "action": one_of(*RELABEL_ACTIONS),
    }
)


def RELABEL_CONFIG(value: Any, where: str) -> dict:
    """A relabel config; the actions that write a label need `target_label` (Prometheus)."""
    config = RELABEL_FIELDS(value, where)
    action = config.get("action", "replace")
    if action in ("replace", "hashmod", "lowercase", "uppercase") and "target_label" not in config:
        raise RecipeError(f"{where}.target_label: missing (action {action} writes it)")
    return config


RELABEL_CONFIG.fields = RELABEL_FIELDS.fields
RELABEL_CONFIG.required = ()
SCRAPE_CONFIG = mapping(
    {
        "job_name": matching(r"[A-Za-z0-9_.:-]{1,128}", "a job name (letters, digits, _.:-)"),
        "scrape_interval": SCRAPE_INTERVAL,
        "scrape_timeout": SCRAPE_INTERVAL,
        "metrics_path": URL_PATH,
        "scheme": one_of("http", "https"),
        "params": url_params,
        "honor_labels": boolean,
        "honor_timestamps": boolean,
        "follow_redirects": boolean,
        "enable_http2": boolean,
        "proxy_url": matching(r"(?:https?|socks5)://\S{1,1000}", "a proxy URL", 1024),
        "static_configs": list_of(STATIC_CONFIG, 100, wrap_scalar=False),
        "file_sd_configs": list_of(FILE_SD_CONFIG, 100, wrap_scalar=False),
        "relabel_configs": list_of(RELABEL_CONFIG, 100, wrap_scalar=False),
        "metric_relabel_configs": list_of(RELABEL_CONFIG, 100, wrap_scalar=False),
        "basic_auth": mapping({"username": text, "password": text, "password_file": NODE_FILE}),
        "authorization": mapping(
            {"type": text_of(64), "credentials": text, "credentials_file": NODE_FILE}
        ),
        "tls_config": mapping(
            {
                "ca_file": NODE_FILE,
                "cert_file": NODE_FILE,
                "key_file": NODE_FILE,
                "server_name": text_of(253),
                "insecure_skip_verify": boolean,
                "min_version": one_of("TLS10", "TLS11", "TLS12", "TLS13"),
            }
        ),
        "sample_limit": integer_in(0, 2**63 - 1),
        "label_limit": integer_in(0, 2**63 - 1),
        "label_name_length_limit": integer_in(0, 2**63 - 1),
        "label_value_length_limit": integer_in(0, 2**63 - 1),
        "target_limit": integer_in(0, 2**63 - 1),
        "body_size_limit": matching(SIZE, "a size such as 10MB"),
    },
    required=("job_name",),
)
MONITORING_TARGET = mapping(
    {
        "service_id": text_of(256),
        "host": hostname,
        "job_name": safe_name,
        "port": port,
        "metrics_path": URL_PATH,
    }
)
PROMETHEUS_KEYS: dict[str, Checker] = {
    "name": safe_name,
    "description": free_text,
    "port": port,
    "ports": list_of(port, 16),
    "scrape_interval": SCRAPE_INTERVAL,
    "scrape_timeout": SCRAPE_INTERVAL,
    "evaluation_interval": SCRAPE_INTERVAL,
    "retention": duration_in(600, 100 * 365 * 86400),
    "retention_size": matching(SIZE, "a size such as 512MB or 10GB"),
    "resources": RESOURCES,
    "environment": environment,
    "monitoring_targets": list_of(MONITORING_TARGET, 100, wrap_scalar=False),
    "extra_scrape_configs": list_of(SCRAPE_CONFIG, 100, wrap_scalar=False),
    "container": CONTAINER,
    "container_image": text,
    "install": install_schema(
        INSTALL_METHODS, tuple(key for key in INSTALL_FIELDS if key != "gpu")
    ),
    "enable_cadvisor": boolean,
    "cadvisor_port": port,
    "build_commands": list_of(text_of(4096), 100),
}
DEFAULT_SCRAPE_INTERVAL = "5s"


def check_timeouts(prometheus: dict, where: str) -> None:
    """Prometheus refuses a scrape timeout above its interval; say so now, naming the key."""
    interval = prometheus["scrape_interval"]
    timeout = prometheus.get("scrape_timeout")
    if timeout and duration_seconds(timeout) > duration_seconds(interval):
        raise RecipeError(
            f"{where}.scrape_timeout: {timeout} is longer than scrape_interval {interval}"
        )
    names: dict[str, str] = {}
    for index, config in enumerate(prometheus["extra_scrape_configs"]):
        place = f"{where}.extra_scrape_configs[{index}]"
        job_interval = config.get("scrape_interval", interval)
        job_timeout = config.get("scrape_timeout")
        if job_timeout and duration_seconds(job_timeout) > duration_seconds(job_interval):
            raise RecipeError(
                f"{place}.scrape_timeout: {job_timeout} is longer than the job's scrape "
                f"interval {job_interval}"
            )
        name = config["job_name"]
        if name in names or name in SESSION_JOB_NAMES:
            first = names.get(name, "the session's own Prometheus job")
            raise RecipeError(f"{place}.job_name: {name!r} is already the job name of {first}")
        names[name] = place
    for target in prometheus["static_targets"]:
        if target["job_name"] in names:
            raise RecipeError(
                f"{where}.monitoring_targets: job_name {target['job_name']!r} is also the job "
                f"name of {names[target['job_name']]}"
            )


def check_with_promtool(prometheus: dict, where: str) -> None:
    """Where promtool is on PATH: the scrape configs the recipe adds, checked by Prometheus's
    own parser (relabel regexes in RE2, for example) before anything is submitted."""
    promtool = shutil.which("promtool")
    if not promtool or not prometheus["extra_scrape_configs"]:
        return
    config = {
        "global": {
            "scrape_interval": prometheus["scrape_interval"],
            "evaluation_interval": prometheus["evaluation_interval"],
            **(
                {"scrape_timeout": prometheus["scrape_timeout"]}
                if prometheus.get("scrape_timeout")
                else {}
            ),
        },
        "scrape_configs": prometheus["extra_scrape_configs"],
    }
    with tempfile.TemporaryDirectory(prefix="hpcansible-promtool-") as folder:
        path = Path(folder) / "prometheus.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        try:
            done = subprocess.run(
                [promtool, "check", "config", "--syntax-only", str(path)],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise RecipeError(
                f"{where}.extra_scrape_configs: promtool did not run ({error})"
            ) from None
    if done.returncode != 0:
        output = f"{done.stdout}\n{done.stderr}"
        lines = [
            line.strip()
            for line in output.splitlines()
            if "FAILED" in line or "error" in line.lower()
        ]
        reason = (lines[0] if lines else output.strip()).replace(str(path), "the scrape configs")
        raise RecipeError(f"{where}.extra_scrape_configs: promtool check config: {reason}")


def load_prometheus(path: Path) -> dict:
    key, body = read_recipe(path, ("prometheus", "service"))
    where = f"{path}: {key}"
    if key == "service" and str(body.get("name", "")).lower() != "prometheus":
        raise RecipeError(
            f"{where}.name: expected 'prometheus' in the third recipe (got "
            f"{shown(body.get('name'))}); the service recipe goes first"
        )
    recipe = mapping(PROMETHEUS_KEYS)(body, where)
    variables = dict(recipe.get("environment", {}))
    warnings = not_run_notes(recipe, where)
    retention = recipe.get("retention")
    if not retention and "PROMETHEUS_RETENTION_TIME" in variables:
        retention = PROMETHEUS_KEYS["retention"](
            variables["PROMETHEUS_RETENTION_TIME"],
            f"{where}.environment.PROMETHEUS_RETENTION_TIME",
        )
    for variable in ("PROMETHEUS_RETENTION_TIME", "PROMETHEUS_STORAGE_PATH"):
        if variable in variables:
            variables.pop(variable)
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
                f"{where}.monitoring_targets[{index}]: service_id {shown(target['service_id'])} "
                "replaced by this session's service (filled in automatically)"
            )
    ports = recipe.get("ports") or []
    interval = recipe.get("scrape_interval", DEFAULT_SCRAPE_INTERVAL)
    prometheus = {
        "kind": "prometheus",
        "source": str(path),
        "port": recipe.get("port") or (ports[0] if ports else 9090),
        "scrape_interval": interval,
        "scrape_timeout": recipe.get("scrape_timeout", ""),
        "evaluation_interval": recipe.get("evaluation_interval", interval),
        "retention": retention or "7d",
        "retention_size": recipe.get("retention_size", ""),
        "resources": resources_of(recipe),
        "environment": variables,
        "static_targets": static_targets,
        "extra_scrape_configs": recipe.get("extra_scrape_configs", []),
        "install": install_settings(recipe),
        "warnings": warnings,
    }
    check_timeouts(prometheus, where)
    check_with_promtool(prometheus, where)
    return prometheus
