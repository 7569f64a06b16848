"""Recipes (plugins/module_utils/recipe_*.py): loading, seed-era format, errors, role variables.

Every shipped recipe under recipes/ is loaded as it is; the rest are small recipes written to
tmp_path. An error must be one line naming the file and the key.
"""

from __future__ import annotations

import functools
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_loaders import (
    CLIENT_METRICS_PORT,
    check_pairing,
    load_client,
    load_prometheus,
    load_service,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_role_vars import (
    install_vars,
    role_vars,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_schema import RecipeError
from hpcansible_jobs.bench.config import OPTIONS_BY_NAME

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
SEED = RECIPES / "seed"


CHECKSUM = "a5fd3b62" * 8  # a SHA-256 as recipes write it (64 hex digits)


def write(tmp_path: Path, text: str, name: str = "recipe.yml") -> Path:
    """A recipe file; CHECKSUM in the text stands for a valid SHA-256."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).replace("CHECKSUM", CHECKSUM))
    return path


def recipe_error(loader, path: Path, *args) -> str:
    """The message of the RecipeError `loader(path)` raises; it must be one line naming the file."""
    with pytest.raises(RecipeError) as caught:
        loader(path, *args)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return message


def load_set(folder: Path) -> dict:
    recipes = {
        "service": load_service(folder / "service.yml"),
        "client": load_client(folder / "client.yml"),
        "prometheus": load_prometheus(folder / "prometheus.yml"),
    }
    check_pairing(recipes["service"], recipes["client"])
    return recipes


def seed_set() -> dict:
    recipes = {
        "service": load_service(SEED / "ollama_with_cadvisor.yaml"),
        "client": load_client(SEED / "ollama_benchmark.yaml"),
        "prometheus": load_prometheus(SEED / "prometheus_with_cadvisor.yaml"),
    }
    check_pairing(recipes["service"], recipes["client"])
    return recipes


# --- the shipped recipes ---------------------------------------------------------------------

SHIPPED_SERVICES = {
    # folder: (type, port, exporter, exporter_port, exporter_job, api, health_path)
    "llamacpp": ("llamacpp", 8000, "cadvisor", 8080, "llamacpp-cadvisor", "openai", "/v1/models"),
    "ollama": ("ollama", 11434, "cadvisor", 8080, "ollama-cadvisor", "ollama", "/api/version"),
    "redis": ("redis", 6379, "process_exporter", 9256, "redis-process-exporter", "redis", ""),
}


@pytest.mark.parametrize("folder", sorted(SHIPPED_SERVICES))
def test_shipped_service_recipe_normalized_fields(folder: str) -> None:
    kind, port, exporter, exporter_port, job, api, health = SHIPPED_SERVICES[folder]
    service = load_service(RECIPES / folder / "service.yml")
    assert service["kind"] == "service"
    assert service["type"] == kind
    assert service["role"] == f"hpcansible.hpc.{kind}_service"
    assert service["port"] == port
    assert service["exporter"] == exporter
    assert service["exporter_port"] == exporter_port
    assert service["exporter_job"] == job
    assert service["api"] == api
    assert service["health_path"] == health
    assert service["warnings"] == []


@pytest.mark.parametrize("folder", sorted(SHIPPED_SERVICES))
def test_shipped_recipe_set_loads_and_pairs(folder: str) -> None:
    recipes = load_set(RECIPES / folder)
    assert recipes["client"]["api"] == recipes["service"]["api"]
    assert recipes["client"]["warnings"] == []
    assert recipes["prometheus"]["port"] == 9090
    assert recipes["prometheus"]["retention"] == "7d"
    assert recipes["prometheus"]["scrape_interval"] == "5s"
    assert set(recipes["client"]["parameters"]) <= set(OPTIONS_BY_NAME)


def test_shipped_llamacpp_settings() -> None:
    service = load_service(RECIPES / "llamacpp" / "service.yml")
    assert service["settings"] == {
        "model": "gemma3-270m",
        "n_ctx": 2048,
        "n_threads": 2,
        "chat_format": "gemma",
    }
    assert service["resources"] == {"cpus_per_task": 2, "time": "01:00:00"}


def test_shipped_redis_maxmemory_normalized() -> None:
    assert load_service(RECIPES / "redis" / "service.yml")["settings"] == {"maxmemory": "256M"}


def test_seed_service_recipe() -> None:
    service = load_service(SEED / "ollama_with_cadvisor.yaml")
    assert service["name"] == "ollama"
    assert service["type"] == "ollama"  # inferred from the name: seed recipes have no type
    assert service["role"] == "hpcansible.hpc.ollama_service"
    assert service["port"] == 11434  # from `ports: [11434]`
    assert service["exporter"] == "cadvisor"
    assert service["exporter_port"] == 8080
    assert service["exporter_job"] == "ollama-cadvisor"
    assert service["api"] == "ollama"
    assert service["health_path"] == "/api/tags"  # from http://localhost:11434/api/tags
    assert service["health_timeout"] == 60  # max(30, 5 * 10, 60)
    assert service["environment"] == {"OLLAMA_KEEP_ALIVE": "5m"}
    assert service["args"] == ["serve"]


def test_seed_service_resources_mem_and_ntasks_per_node() -> None:
    resources = load_service(SEED / "ollama_with_cadvisor.yaml")["resources"]
    assert resources["mem"] == "2G"
    assert "ntasks_per_node" not in resources
    assert resources["extra_args"] == ["--ntasks-per-node=1"]
    assert resources["nodes"] == "1"
    assert resources["ntasks"] == 1


def test_seed_service_container_becomes_apptainer_install_and_docker_source_a_note() -> None:
    service = load_service(SEED / "ollama_with_cadvisor.yaml")
    assert service["install"] == {
        "method": "apptainer",
        "image": "$HOME/containers/ollama_latest.sif",
    }
    (warning,) = [note for note in service["warnings"] if "docker_source" in note]
    assert "service.container.docker_source: not pulled" in warning
    assert "apptainer pull" in warning


def test_seed_client_recipe() -> None:
    client = load_client(SEED / "ollama_benchmark.yaml")
    assert client["name"] == "ollama_benchmark"
    assert client["api"] is None  # filled in by check_pairing
    assert client["parameters"] == {
        "model": "gemma3:270m",
        "requests": 40,
        "concurrency": 2,
        "input_tokens": 50,
        "output_tokens": 20,
        "wait_for_service": 120,
    }
    assert client["resources"]["mem"] == "1G"
    assert client["target_service"] == {
        "name": "ollama",
        "port": 11434,
        "health_check_endpoint": "/api/tags",
    }


def test_seed_client_ignored_keys_are_notes() -> None:
    warnings = load_client(SEED / "ollama_benchmark.yaml")["warnings"]
    assert any("parameters.output_file: ignored" in warning for warning in warnings)
    assert any("client.script: not run" in warning for warning in warnings)


def test_seed_set_pairs_and_client_gets_the_service_api() -> None:
    recipes = seed_set()
    assert recipes["client"]["api"] == "ollama"


def test_seed_prometheus_recipe() -> None:
    prometheus = load_prometheus(SEED / "prometheus_with_cadvisor.yaml")
    assert prometheus["kind"] == "prometheus"
    assert prometheus["port"] == 9090  # from `ports: [9090]`
    assert prometheus["retention"] == "15d"  # from PROMETHEUS_RETENTION_TIME
    assert prometheus["environment"] == {}  # both PROMETHEUS_* variables consumed
    assert prometheus["static_targets"] == []
    assert prometheus["install"] == {
        "method": "apptainer",
        "image": "$HOME/containers/prometheus.sif",
    }
    notes = " | ".join(prometheus["warnings"])
    assert "monitoring_targets[0]: service_id 'ollama_df1a2714'" in notes
    assert "PROMETHEUS_STORAGE_PATH: ignored" in notes


# --- seed-era format specifics ---------------------------------------------------------------


def test_enable_cadvisor_false_means_no_exporter(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {name: ollama, enable_cadvisor: false}\n")
    service = load_service(path)
    assert service["exporter"] == "none"
    assert service["exporter_job"] == ""


def test_cadvisor_port_sets_the_exporter_port(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {name: ollama, enable_cadvisor: true, cadvisor_port: 8181}\n")
    service = load_service(path)
    assert service["exporter"] == "cadvisor"
    assert service["exporter_port"] == 8181


def test_ports_list_gives_the_port(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {name: redis, ports: [6390, 6391]}\n")
    assert load_service(path)["port"] == 6390


def test_explicit_port_wins_over_ports(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {name: redis, port: 7000, ports: [6390]}\n")
    assert load_service(path)["port"] == 7000


def test_ollama_host_gives_the_port(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {name: ollama, environment: {OLLAMA_HOST: '0.0.0.0:11500'}}\n")
    assert load_service(path)["port"] == 11500


def test_ollama_host_without_port_keeps_the_default(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {name: ollama, environment: {OLLAMA_HOST: '0.0.0.0'}}\n")
    assert load_service(path)["port"] == 11434


def test_health_check_endpoint_url_becomes_a_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "service: {name: ollama, health_check: {endpoint: 'http://localhost:11434/api/tags'}}\n",
    )
    assert load_service(path)["health_path"] == "/api/tags"


def test_health_check_endpoint_without_path_is_root(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {name: ollama, health_check: {endpoint: 'http://h:1'}}\n")
    assert load_service(path)["health_path"] == "/"


@pytest.mark.parametrize(
    ("given", "expected"), [("16GB", "16G"), ("512mb", "512M"), ("4G", "4G"), (2048, "2048")]
)
def test_memory_is_normalized_for_sbatch(tmp_path: Path, given, expected) -> None:
    path = write(tmp_path, f"service: {{name: ollama, resources: {{mem: {given!r}}}}}\n")
    assert load_service(path)["resources"]["mem"] == expected


def test_ntasks_per_node_appends_to_extra_args(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "service: {name: ollama, resources: {extra_args: ['--exclusive'], ntasks_per_node: 4}}\n",
    )
    assert load_service(path)["resources"]["extra_args"] == ["--exclusive", "--ntasks-per-node=4"]


def test_type_inferred_from_command(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {name: kv, command: /usr/bin/redis-server}\n")
    assert load_service(path)["type"] == "redis"


def test_command_becomes_a_binary_install(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {name: ollama, command: $HOME/bin/ollama}\n")
    assert load_service(path)["install"] == {"method": "binary", "binary": "$HOME/bin/ollama"}


def test_client_seed_parameters_are_mapped(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        client:
          parameters:
            num_requests: 10
            concurrent_requests: 3
            prompt_length: 100
            max_tokens: 50
        """,
    )
    assert load_client(path)["parameters"] == {
        "requests": 10,
        "concurrency": 3,
        "input_tokens": 100,
        "output_tokens": 50,
    }


@pytest.mark.parametrize("name", ["num_operations", "operations_per_test"])
def test_client_seed_redis_operation_counts_mean_requests(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, f"client: {{parameters: {{{name}: 500}}}}\n")
    assert load_client(path)["parameters"] == {"requests": 500}


@pytest.mark.parametrize("name", ["output_file", "test_persistence"])
def test_client_seed_parameters_without_effect_are_notes(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, f"client: {{parameters: {{{name}: x, requests: 5}}}}\n")
    client = load_client(path)
    assert client["parameters"] == {"requests": 5}
    (warning,) = client["warnings"]
    assert f"client.parameters.{name}: ignored" in warning
    assert warning.startswith(str(path))


# bench (issue 8): the seed's parametric sweep keys are the client's sweep axes
def test_client_seed_parametric_sweep_maps_to_the_clients_axes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'client: {parameters: {concurrent_requests: "1,2,5,10,20", max_tokens: "50,100,200,500",'
        ' prompt_lengths: "50,100,200,500", model: m}}\n',
    )
    client = load_client(path)
    assert client["parameters"] == {
        "concurrency": [1, 2, 5, 10, 20],
        "output_tokens": [50, 100, 200, 500],
        "input_tokens": [50, 100, 200, 500],
        "model": "m",
    }
    assert client["warnings"] == []
    bad = write(tmp_path, 'client: {parameters: {max_tokens: "50,abc"}}\n')
    with pytest.raises(RecipeError, match=r"client.parameters.max_tokens: expected an integer"):
        load_client(bad)


def test_client_output_section_is_a_note(tmp_path: Path) -> None:
    path = write(tmp_path, "client: {output: {file: r.json, shared_dir: $SCRATCH/out}}\n")
    (warning,) = load_client(path)["warnings"]
    assert "client.output: ignored" in warning


def test_client_duration_becomes_a_parameter_without_requests(tmp_path: Path) -> None:
    path = write(tmp_path, "client: {duration: 30}\n")
    assert load_client(path)["parameters"] == {"duration": 30}


def test_client_duration_not_added_when_requests_given(tmp_path: Path) -> None:
    path = write(tmp_path, "client: {duration: 30, parameters: {num_requests: 9}}\n")
    assert load_client(path)["parameters"] == {"requests": 9}


def test_target_service_name_mismatch(tmp_path: Path) -> None:
    service = load_service(RECIPES / "redis" / "service.yml")
    client_path = write(tmp_path, "client: {api: redis, target_service: {name: ollama}}\n")
    client = load_client(client_path)
    with pytest.raises(RecipeError) as caught:
        check_pairing(service, client)
    message = str(caught.value)
    assert message.startswith(f"{client_path}: client.target_service.name: 'ollama'")
    assert str(RECIPES / "redis" / "service.yml") in message
    assert "\n" not in message


def test_target_service_port_mismatch(tmp_path: Path) -> None:
    service = load_service(RECIPES / "ollama" / "service.yml")
    client = load_client(write(tmp_path, "client: {target_service: {port: 1234}}\n"))
    with pytest.raises(RecipeError, match=r"client\.target_service\.port: 1234 .* 11434"):
        check_pairing(service, client)


def test_redis_service_needs_redis_api(tmp_path: Path) -> None:
    service = load_service(RECIPES / "redis" / "service.yml")
    client = load_client(write(tmp_path, "client: {api: openai}\n"))
    with pytest.raises(RecipeError, match=r"client\.api: a Redis service needs api: redis"):
        check_pairing(service, client)


def test_seed_prometheus_service_name_with_service_id_target_is_a_note(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        service:
          name: prometheus
          monitoring_targets:
            - service_id: "redis_0001"
              job_name: redis-cadvisor
              port: 8080
        """,
    )
    prometheus = load_prometheus(path)
    assert prometheus["static_targets"] == []
    (warning,) = prometheus["warnings"]
    assert "monitoring_targets[0]: service_id 'redis_0001' replaced" in warning


def test_prometheus_host_and_port_target_is_static(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        prometheus:
          monitoring_targets:
            - {host: node9, port: 9100, job_name: gpu-node}
            - {host: node8, port: 9400, metrics_path: /gpu}
        """,
    )
    assert load_prometheus(path)["static_targets"] == [
        {"job_name": "gpu-node", "targets": ["node9:9100"], "metrics_path": "/metrics"},
        {"job_name": "extra-1", "targets": ["node8:9400"], "metrics_path": "/gpu"},
    ]


def test_prometheus_host_target_without_port(tmp_path: Path) -> None:
    path = write(tmp_path, "prometheus: {monitoring_targets: [{host: node9}]}\n")
    message = recipe_error(load_prometheus, path)
    assert "prometheus.monitoring_targets[0].port: missing" in message


def test_prometheus_retention_time_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "prometheus: {environment: {PROMETHEUS_RETENTION_TIME: 30d}}\n")
    prometheus = load_prometheus(path)
    assert prometheus["retention"] == "30d"
    assert prometheus["environment"] == {}


def test_prometheus_retention_key_wins_over_variable(tmp_path: Path) -> None:
    path = write(
        tmp_path, "prometheus: {retention: 2d, environment: {PROMETHEUS_RETENTION_TIME: 30d}}\n"
    )
    assert load_prometheus(path)["retention"] == "2d"


def test_prometheus_bad_retention_time_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "prometheus: {environment: {PROMETHEUS_RETENTION_TIME: forever}}\n")
    message = recipe_error(load_prometheus, path)
    assert "environment.PROMETHEUS_RETENTION_TIME: expected a duration" in message


def test_prometheus_defaults(tmp_path: Path) -> None:
    prometheus = load_prometheus(write(tmp_path, "prometheus: {}\n"))
    assert prometheus["port"] == 9090
    assert prometheus["scrape_interval"] == "5s"
    assert prometheus["evaluation_interval"] == "5s"
    assert prometheus["retention"] == "7d"


def test_prometheus_integer_interval_is_seconds(tmp_path: Path) -> None:
    prometheus = load_prometheus(write(tmp_path, "prometheus: {scrape_interval: 15}\n"))
    assert prometheus["scrape_interval"] == "15s"
    assert prometheus["evaluation_interval"] == "15s"


def test_seed_prometheus_with_other_service_name(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {name: ollama}\n")
    message = recipe_error(load_prometheus, path)
    assert "service.name: expected 'prometheus' in the third recipe" in message


# --- errors: one line naming file and key ----------------------------------------------------


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {name: ollama, resourcs: {}}\n")
    message = recipe_error(load_service, path)
    assert message == f"{path}: service.resourcs: unknown key (did you mean 'resources'?)"


def test_unknown_nested_key_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {name: ollama, resources: {cpus_per_tsk: 2}}\n")
    message = recipe_error(load_service, path)
    assert "service.resources.cpus_per_tsk: unknown key (did you mean 'cpus_per_task'?)" in message


def test_unknown_key_without_a_close_match(tmp_path: Path) -> None:
    path = write(tmp_path, "client: {zzzz: 1}\n")
    message = recipe_error(load_client, path)
    assert message == f"{path}: client.zzzz: unknown key"


def test_key_of_another_service_type_is_unknown(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {name: redis, n_ctx: 512}\n")
    assert "service.n_ctx: unknown key" in recipe_error(load_service, path)


@pytest.mark.parametrize(
    ("body", "key", "what"),
    [
        (
            "resources: {cpus_per_task: two}",
            "service.resources.cpus_per_task",
            "expected an integer",
        ),
        ("resources: [1, 2]", "service.resources", "expected a mapping, got a list"),
        ("environment: [A, B]", "service.environment", "expected a mapping of names to values"),
        ("enable_cadvisor: 'yes'", "service.enable_cadvisor", "expected true or false"),
        ("description: true", "service.description", "expected a string, got true/false"),
        ("description: {a: 1}", "service.description", "expected a string, got a mapping"),
        ("port: 70000", "service.port", "70000 is not a TCP port"),
        ("port: http", "service.port", "expected an integer"),
        ("ports: [11434, x]", "service.ports[1]", "expected an integer"),
        ("exporter: prometheus", "service.exporter", "'prometheus' is not one of"),
        ("health_check: {timeout: 1.5}", "service.health_check.timeout", "expected an integer"),
        ("environment: {'1BAD': x}", "service.environment.1BAD", "not a valid environment"),
        ("resources: {mem: lots}", "service.resources.mem", "expected a memory size"),
    ],
)
def test_wrong_type_names_the_key(tmp_path: Path, body: str, key: str, what: str) -> None:
    path = write(tmp_path, f"service:\n  name: ollama\n  {body}\n")
    message = recipe_error(load_service, path)
    assert f"{path}: {key}: {what}" in message


def test_integer_given_as_digit_string_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {name: ollama, resources: {cpus_per_task: '4'}}\n")
    assert load_service(path)["resources"]["cpus_per_task"] == 4


def test_bad_service_name(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {name: 'my service; rm', type: redis}\n")
    assert "service.name: 'my service; rm' must start with a letter" in recipe_error(
        load_service, path
    )


def test_missing_service_name(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {type: redis}\n")
    assert "service.name: missing" in recipe_error(load_service, path)


def test_service_type_cannot_be_told(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {name: mystery}\n")
    assert "service.type: cannot tell which service this is" in recipe_error(load_service, path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yml"
    assert recipe_error(load_service, path) == f"{path}: no such file"


def test_a_folder_is_not_a_recipe(tmp_path: Path) -> None:
    assert recipe_error(load_client, tmp_path) == f"{tmp_path}: is a folder, not a recipe file"


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "service:\n  name: ollama\n  resources: {cpus: [1, 2}\n")
    message = recipe_error(load_service, path)
    assert message.startswith(f"{path}: line 3: ")


def test_tab_indentation_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "service:\n  name: ollama\n\tport: 1\n")
    assert recipe_error(load_service, path).startswith(f"{path}: line 3: ")


@pytest.mark.parametrize("loader", [load_service, load_client, load_prometheus])
def test_empty_file(tmp_path: Path, loader) -> None:
    path = write(tmp_path, "")
    assert "expected a mapping with a top-level" in recipe_error(loader, path)


def test_only_a_comment_is_empty(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing here\n")
    assert "expected a mapping with a top-level 'service:' key" in recipe_error(load_service, path)


def test_two_top_level_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {name: ollama}\nclient: {api: ollama}\n")
    message = recipe_error(load_service, path)
    assert "expected exactly one top-level key" in message


def test_wrong_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, "client: {api: ollama}\n")
    message = recipe_error(load_service, path)
    assert message == f"{path}: client: expected exactly one top-level key, one of service"


def test_top_level_body_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "service: [ollama]\n")
    assert recipe_error(load_service, path) == f"{path}: service: expected a mapping, got a list"


def test_a_list_document_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "- service: {name: ollama}\n")
    assert "expected a mapping with a top-level" in recipe_error(load_service, path)


def test_prometheus_recipe_given_as_the_service() -> None:
    path = SEED / "prometheus_with_cadvisor.yaml"
    message = recipe_error(load_service, path)
    assert message == f"{path}: this is a Prometheus recipe; pass it as the third recipe"


def test_unknown_benchmark_parameter_with_known_options(tmp_path: Path) -> None:
    path = write(tmp_path, "client: {parameters: {concurency: 4}}\n")
    message = recipe_error(load_client, path)
    assert message == (
        f"{path}: client.parameters.concurency: unknown benchmark parameter "
        "(did you mean 'concurrency'?)"
    )


def test_without_the_benchmark_client_package_client_recipes_are_refused_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never less checking in silence: without hpcansible_jobs.bench the client is not checked."""
    monkeypatch.setitem(sys.modules, "hpcansible_jobs.bench", None)
    path = write(tmp_path, "client: {parameters: {requests: 4}}\n")
    message = recipe_error(load_client, path)
    assert message.startswith(f"{path}: client.parameters: cannot be checked")
    assert "hpcansible_jobs.bench" in message


@pytest.mark.parametrize("name", ["endpoint", "output", "api", "session_id", "metrics_port"])
def test_session_owned_parameters_are_rejected(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, f"client: {{parameters: {{{name}: x}}}}\n")
    message = recipe_error(load_client, path)
    assert f"client.parameters.{name}: set by the session; remove it from the recipe" in message


def test_parameters_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "client: {parameters: [requests, 10]}\n")
    assert "client.parameters: expected a mapping, got a list" in recipe_error(load_client, path)


def test_wait_for_service_must_be_an_integer(tmp_path: Path) -> None:
    path = write(tmp_path, "client: {parameters: {wait_for_service: soon}}\n")
    message = recipe_error(load_client, path)
    assert "client.parameters.wait_for_service: expected a number, got 'soon'" in message


# --- recipe values are data, never commands --------------------------------------------------


def test_shell_text_in_environment_stays_a_plain_string(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        service:
          name: redis
          password: "x; rm -rf ~"
          environment:
            EVIL: "x; rm -rf ~"
            SUBST: "$(touch /tmp/pwned)"
            FLAG: true
        """,
    )
    service = load_service(path)
    assert service["environment"] == {
        "EVIL": "x; rm -rf ~",
        "SUBST": "$(touch /tmp/pwned)",
        "FLAG": "1",
    }
    assert service["settings"]["password"] == "x; rm -rf ~"


# --- role variables --------------------------------------------------------------------------


@functools.cache
def argument_spec_options(role: str) -> frozenset[str]:
    spec = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return frozenset(spec["argument_specs"]["main"]["options"])


def role_of(variable: str, service_type: str) -> str:
    for role in (f"{service_type}_service", "cadvisor", "benchmark_client", "prometheus"):
        if variable.startswith(f"{role}_"):
            return role
    raise AssertionError(f"{variable}: belongs to no role")


def assert_role_vars_exist(variables: dict, service_type: str) -> None:
    for variable in variables:
        role = role_of(variable, service_type)
        assert variable in argument_spec_options(role), (
            f"{variable} is not an option of roles/{role}/meta/argument_specs.yml"
        )


FULL_SERVICES = {
    "ollama": """\
        service:
          name: ollama
          model: gemma3:270m
          models_dir: $SCRATCH/models
          num_parallel: 2
          keep_alive: 5m
          gpu: true
          exporter: cadvisor
          exporter_port: 8181
          environment: {OLLAMA_DEBUG: "1"}
          resources: {cpus_per_task: 2}
          install:
            method: download
            url: "https://x/ollama.tgz"
            sha256: "CHECKSUM"
            version: "0.6.0"
        """,
    "redis": """\
        service:
          name: redis
          password: s3cret
          maxmemory: 1GB
          persistence: true
          exporter: process_exporter
          install: {method: apptainer, image: $HOME/redis.sif}
        """,
    "llamacpp": """\
        service:
          name: llamacpp
          type: llamacpp
          model: gemma3-270m
          model_path: $SCRATCH/gemma.gguf
          n_ctx: 1024
          n_threads: 4
          exporter: node_exporter
        """,
}
FULL_CLIENT = """\
    client:
      name: bench
      metrics_port: 9200
      linger: 30
      environment: {A: b}
      parameters: {model: m, requests: 10, wait_for_service: 60}
    """
FULL_PROMETHEUS = """\
    prometheus:
      port: 9091
      retention: 1d
      retention_size: 1GB
      monitoring_targets: [{host: node1, port: 9100}]
      extra_scrape_configs: [{job_name: x, static_configs: [{targets: ["a:1"]}]}]
      install: {method: module, module: prometheus/2.53}
    """


def full_set(tmp_path: Path, service_type: str) -> dict:
    recipes = {
        "service": load_service(write(tmp_path, FULL_SERVICES[service_type], "service.yml")),
        "client": load_client(write(tmp_path, FULL_CLIENT, "client.yml")),
        "prometheus": load_prometheus(write(tmp_path, FULL_PROMETHEUS, "prometheus.yml")),
    }
    check_pairing(recipes["service"], recipes["client"])
    return recipes


@pytest.mark.parametrize("service_type", sorted(FULL_SERVICES))
def test_role_vars_of_every_setting_are_role_options(tmp_path: Path, service_type: str) -> None:
    variables, _ = role_vars(full_set(tmp_path, service_type))
    prefix = f"{service_type}_service"
    assert variables[f"{prefix}_name"] == service_type
    assert f"{prefix}_port" in variables
    assert variables["prometheus_retention_size"] == "1GB"
    assert variables["prometheus_install_method"] == "module"
    assert_role_vars_exist(variables, service_type)


@pytest.mark.parametrize("folder", sorted(SHIPPED_SERVICES))
def test_role_vars_of_shipped_recipes_are_role_options(folder: str) -> None:
    recipes = load_set(RECIPES / folder)
    variables, notes = role_vars(recipes)
    assert_role_vars_exist(variables, recipes["service"]["type"])
    assert notes == []


def test_role_vars_of_seed_recipes_are_role_options() -> None:
    variables, _ = role_vars(seed_set())
    assert_role_vars_exist(variables, "ollama")
    assert variables["ollama_service_install_method"] == "apptainer"
    assert variables["ollama_service_apptainer_image"] == "$HOME/containers/ollama_latest.sif"
    assert variables["prometheus_install_method"] == "apptainer"
    assert variables["benchmark_client_wait_for_service"] == 120
    assert "wait_for_service" not in variables["benchmark_client_parameters"]


def test_role_vars_settings_names(tmp_path: Path) -> None:
    variables, _ = role_vars(full_set(tmp_path, "llamacpp"))
    assert variables["llamacpp_service_model_alias"] == "gemma3-270m"
    assert variables["llamacpp_service_model_path"] == "$SCRATCH/gemma.gguf"
    assert variables["cadvisor_exporter"] == "node_exporter"
    assert variables["cadvisor_port"] == 9100


def test_role_vars_client(tmp_path: Path) -> None:
    variables, _ = role_vars(full_set(tmp_path, "redis"))
    assert variables["benchmark_client_api"] == "redis"
    assert variables["benchmark_client_metrics_port"] == 9200
    assert variables["benchmark_client_linger"] == 30
    assert variables["benchmark_client_wait_for_service"] == 60
    assert variables["benchmark_client_parameters"] == {"model": "m", "requests": 10}
    assert variables["redis_service_maxmemory"] == "1G"


def test_role_vars_without_exporter_sets_no_exporter_port(tmp_path: Path) -> None:
    recipes = seed_set()
    recipes["service"] = load_service(
        write(tmp_path, "service: {name: ollama, enable_cadvisor: false}\n")
    )
    variables, _ = role_vars(recipes)
    assert variables["cadvisor_exporter"] == "none"
    assert "cadvisor_port" not in variables


def test_benchmark_client_metrics_port_always_present() -> None:
    for folder in SHIPPED_SERVICES:
        variables, _ = role_vars(load_set(RECIPES / folder))
        assert variables["benchmark_client_metrics_port"] == CLIENT_METRICS_PORT
    variables, _ = role_vars(seed_set())
    assert variables["benchmark_client_metrics_port"] == CLIENT_METRICS_PORT


def test_site_programs_drop_recipe_install_settings_with_a_note() -> None:
    variables, notes = role_vars(seed_set(), site_programs=["ollama", "prometheus"])
    assert not any(name.endswith(("_install_method", "_apptainer_image")) for name in variables)
    install_notes = [note for note in notes if "site profile provides" in note]
    assert len(install_notes) == 2
    assert any(
        "site profile provides ollama; the recipe's apptainer settings are not used" in note
        for note in notes
    )
    assert any("site profile provides prometheus" in note for note in notes)


def test_site_programs_keep_settings_of_programs_they_do_not_provide() -> None:
    variables, notes = role_vars(seed_set(), site_programs=["prometheus"])
    assert variables["ollama_service_install_method"] == "apptainer"
    assert "prometheus_install_method" not in variables
    assert [note for note in notes if "site profile provides" in note] != []
    assert not any("provides ollama" in note for note in notes)


def test_service_args_are_a_note() -> None:
    (note,) = [note for note in seed_set()["service"]["warnings"] if ".args" in note]
    assert note.endswith(
        "service.args: not passed; the ollama_service role builds the ollama command line "
        "from the recipe's keys"
    )


def test_install_vars_names() -> None:
    variables, notes = install_vars(
        "prometheus", {"method": "download", "url": "u", "sha256": "s"}, "prometheus", [], "w"
    )
    assert variables == {
        "prometheus_install_method": "download",
        "prometheus_download_url": "u",
        "prometheus_checksum": "s",
    }
    assert notes == []


def test_install_vars_empty_install() -> None:
    assert install_vars("ollama_service", {}, "ollama", ["ollama"], "w") == ({}, [])


def test_install_vars_site_provided() -> None:
    variables, notes = install_vars(
        "ollama_service", {"method": "binary", "binary": "b"}, "ollama", ["ollama"], "f: service"
    )
    assert variables == {}
    assert notes == [
        "f: service: the site profile provides ollama; "
        "the recipe's binary settings are not used here"
    ]


# --- install settings: only what the role can do ---------------------------------------------


@pytest.mark.parametrize(
    ("body", "key", "what"),
    [
        ("{name: redis, install: {method: download}}", "service.install.method", "'download' is"),
        ("{name: redis, install: {url: u}}", "service.install.url", "unknown key"),
        ("{name: redis, install: {sha256: s}}", "service.install.sha256", "unknown key"),
        (
            "{name: llamacpp, type: llamacpp, install: {method: binary}}",
            "service.install",
            "unknown",
        ),
    ],
)
def test_install_settings_a_role_cannot_use_are_errors(
    tmp_path: Path, body: str, key: str, what: str
) -> None:
    path = write(tmp_path, f"service: {body}\n")
    assert f"{path}: {key}: {what}" in recipe_error(load_service, path)


def test_prometheus_install_gpu_is_unknown(tmp_path: Path) -> None:
    path = write(tmp_path, "prometheus: {install: {method: binary, gpu: true}}\n")
    assert f"{path}: prometheus.install.gpu: unknown key" in recipe_error(load_prometheus, path)


def test_seed_llamacpp_command_is_a_note_not_an_install(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {name: llm, command: /opt/bin/llama-server}\n")
    service = load_service(path)
    assert service["type"] == "llamacpp"
    assert service["install"] == {}
    (warning,) = service["warnings"]
    assert warning.startswith(f"{path}: service.command: not used")


@pytest.mark.parametrize(
    ("service_type", "install"),
    [
        (
            "ollama",
            "{method: download, url: 'https://x/o.tgz', sha256: CHECKSUM, version: '1', gpu: true}",
        ),
        ("ollama", "{method: module, module: ollama/0.6}"),
        ("redis", "{method: apptainer, image: $HOME/r.sif}"),
        ("redis", "{method: module, module: redis/7}"),
        ("redis", "{method: binary, binary: /usr/bin/redis-server}"),
    ],
)
def test_install_role_vars_are_role_options(
    tmp_path: Path, service_type: str, install: str
) -> None:
    write(tmp_path, f"service: {{name: {service_type}, install: {install}}}\n", "service.yml")
    write(tmp_path, "client: {parameters: {model: m}}\n", "client.yml")
    write(
        tmp_path,
        "prometheus: {install: {method: download, url: 'https://x/p.tgz', sha256: CHECKSUM}}\n",
        "prometheus.yml",
    )
    variables, notes = role_vars(load_set(tmp_path))
    assert f"{service_type}_service_install_method" in variables
    assert_role_vars_exist(variables, service_type)
    assert notes == []
