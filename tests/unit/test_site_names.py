"""A recipe's partition and QoS names: mapped to the site's, and refused in one line naming the
file and the key when the site lacks them; the HPCANSIBLE_SWEEP_POINTS override; the seed-era
recipe sets of issue 10 load and mean what the seed meant."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_loaders import (
    check_pairing,
    load_client,
    load_service,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_overrides import reduce_sweeps
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_prometheus import (
    load_prometheus,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_role_vars import role_vars
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_schema import RecipeError
from ansible_collections.hpcansible.hpc.plugins.module_utils.site_names import (
    check_names,
    map_names,
    parse_partitions,
)

SEED = Path(__file__).resolve().parents[2] / "recipes" / "seed"


def seed_set(service: str, client: str) -> dict[str, dict]:
    recipes = {
        "service": load_service(SEED / service),
        "client": load_client(SEED / client),
        "prometheus": load_prometheus(SEED / "prometheus_with_cadvisor.yaml"),
    }
    check_pairing(recipes["service"], recipes["client"], recipes["prometheus"])
    return recipes


def gpu_recipes(tmp_path: Path) -> dict[str, dict]:
    service = tmp_path / "service.yaml"
    service.write_text(
        "service:\n  name: ollama\n  resources: {partition: gpu, qos: default, gres: 'gpu:1'}\n"
    )
    return {"service": load_service(service)}


def test_sinfo_partitions_once_each_without_the_default_mark() -> None:
    assert parse_partitions("debug*\ndebug\ncpu\ngpu\n") == ["debug", "cpu", "gpu"]


def test_a_site_profile_maps_the_recipes_names(tmp_path: Path) -> None:
    recipes = gpu_recipes(tmp_path)
    notes = map_names(recipes, {"gpu": "gpu-a100"}, {"default": "normal"})
    assert recipes["service"]["resources"]["partition"] == "gpu-a100"
    assert recipes["service"]["resources"]["qos"] == "normal"
    assert notes == [
        f"{tmp_path}/service.yaml: service.resources.partition: 'gpu' is 'gpu-a100' at this "
        "site (hpcansible_partition_map)",
        f"{tmp_path}/service.yaml: service.resources.qos: 'default' is 'normal' at this site "
        "(hpcansible_qos_map)",
    ]
    check_names(recipes, ["debug", "gpu-a100"], ["normal"])


def test_a_partition_the_site_lacks_is_one_line_naming_file_and_key(tmp_path: Path) -> None:
    recipes = gpu_recipes(tmp_path)
    with pytest.raises(RecipeError) as caught:
        check_names(recipes, ["debug", "cpu"], ["default"])
    assert str(caught.value) == (
        f"{tmp_path}/service.yaml: service.resources.partition: 'gpu' is not a partition of "
        "this site (sinfo lists debug, cpu); map it with hpcansible_partition_map"
    )


def test_a_qos_the_site_lacks_is_refused_though_slurm_would_take_it(tmp_path: Path) -> None:
    recipes = gpu_recipes(tmp_path)
    with pytest.raises(RecipeError, match=r"service.resources.qos: 'default' is not a QoS of "):
        check_names(recipes, ["gpu"], ["normal", "high"])
    check_names(recipes, ["gpu"], None)  # a profile without a QoS list: not checked


def test_sweep_points_override_keeps_the_first_values() -> None:
    recipes = seed_set("redis_with_cadvisor.yaml", "redis_parametric.yaml")
    client = recipes["client"]
    assert client["parameters"]["concurrency"] == [1, 10, 50]
    notes = reduce_sweeps(client, {"HPCANSIBLE_SWEEP_POINTS": "1"})
    assert client["parameters"]["concurrency"] == 1
    assert client["parameters"]["value_sizes"] == 64
    assert client["parameters"]["pipeline"] == 1
    assert len(notes) == 3 and "HPCANSIBLE_SWEEP_POINTS=1" in notes[0]
    with pytest.raises(RecipeError, match="HPCANSIBLE_SWEEP_POINTS='x'"):
        reduce_sweeps(client, {"HPCANSIBLE_SWEEP_POINTS": "x"})
    assert reduce_sweeps(client, {}) == []


def test_seed_redis_benchmark_keys_are_redis_benchmarks_options() -> None:
    recipes = seed_set("redis_with_cadvisor.yaml", "redis_benchmark.yaml")
    parameters = recipes["client"]["parameters"]
    assert parameters == {
        "requests": 20000,
        "concurrency": 10,
        "value_size": 64,
        "pipeline": 1,
        "tests": "ping,set,get",
        "wait_for_service": 60,
    }
    assert recipes["client"]["api"] == "redis"
    # the seed's top-level duration does not bound a run that num_operations bounds
    assert any("client.duration: not used" in note for note in recipes["client"]["warnings"])


@pytest.mark.parametrize(
    ("service", "client", "service_type", "api", "role", "exporter_port"),
    [
        ("mysql_with_cadvisor.yaml", "mysql_benchmark.yaml", "mariadb", "mysql",
         "hpcansible.hpc.mariadb_service", 9104),
        ("postgres_with_cadvisor.yaml", "postgres_benchmark.yaml", "postgres", "postgres",
         "hpcansible.hpc.postgres_service", 9187),
        ("chroma_with_cadvisor.yaml", "chroma_benchmark.yaml", "chroma", "chroma",
         "hpcansible.hpc.chroma_service", None),
    ],
)  # fmt: skip
def test_seed_database_sets_pick_their_roles(
    service, client, service_type, api, role, exporter_port
) -> None:
    recipes = seed_set(service, client)
    assert recipes["service"]["type"] == service_type
    assert recipes["service"]["role"] == role
    assert recipes["client"]["api"] == api
    variables, _ = role_vars(recipes)
    assert variables.get(f"{service_type}_service_exporter_port") == exporter_port
    notes = " ".join(recipes["client"]["warnings"] + recipes["service"]["warnings"])
    if client == "chroma_benchmark.yaml":
        assert "build_commands: not run" in notes


def test_a_mysql_type_is_served_by_mariadb(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_text("service:\n  name: db\n  type: mysql\n  password: x\n")
    recipe = load_service(path)
    assert (recipe["type"], recipe["port"]) == ("mariadb", 3306)
    assert recipe["settings"] == {"password": "x"}


def test_the_testbed_profile_lists_its_qos_and_maps_nothing(tmp_path: Path) -> None:
    from ansible_collections.hpcansible.hpc.plugins.module_utils.site_names import (
        check_site,
        profile_settings,
    )

    testbed = Path(__file__).resolve().parents[2] / "inventory" / "testbed"
    settings = profile_settings(testbed)
    assert settings == {
        "hpcansible_partition_map": {},
        "hpcansible_qos_map": {},
        "hpcansible_qos_names": ["default", "normal"],
    }
    recipes = gpu_recipes(tmp_path)
    assert check_site(recipes, settings, ["debug", "cpu", "gpu"]) == []
    meluxina_style = {**settings, "hpcansible_partition_map": {"gpu": "cpu"}}
    assert len(check_site(gpu_recipes(tmp_path), meluxina_style, ["cpu"])) == 1
