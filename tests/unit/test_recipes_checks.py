"""Every recipe value checked before submission (issue 12 item 6), and the notes recipes get.

Each wrong value of issue 12's list is refused with one line that names the file and the key;
every kind of unreadable file is one line naming the file; seed-era keys that ask for commands
are accepted with a note saying they were not run (issue 10 item 4); the time-limit rule warns
where a job would end before the client's planned load.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from ansible_collections.hpcansible.hpc.plugins.module_utils import recipe_yaml
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_client import (
    START_ALLOWANCE_S,
    planned_load_seconds,
    point_seconds,
    time_limit_notes,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_loaders import (
    check_pairing,
    load_client,
    load_prometheus,
    load_service,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_schema import (
    RecipeError,
    duration_seconds,
    slurm_time_seconds,
)

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
LOADERS = {"service": load_service, "client": load_client, "prometheus": load_prometheus}


def write(tmp_path: Path, text: str, name: str = "recipe.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def refused(loader, path: Path) -> str:
    """The one-line message naming the file that `loader(path)` refuses the recipe with."""
    with pytest.raises(RecipeError) as caught:
        loader(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:")
    return message


# --- issue 12's 17 values that were accepted although wrong -----------------------------------

WRONG_VALUES = [
    # (kind, recipe body, key named, what the message says)
    (
        "service",
        "resources: {cpus_per_task: -1}",
        "service.resources.cpus_per_task",
        "out of range",
    ),
    (
        "service",
        "resources: {cpus_per_task: 1000000000000000000000000000000}",
        "service.resources.cpus_per_task",
        "out of range",
    ),
    ("service", "resources: {time: abc}", "service.resources.time", "expected a SLURM time limit"),
    (
        "service",
        "resources: {time: '-01:00:00'}",
        "service.resources.time",
        "expected a SLURM time limit",
    ),
    (
        "service",
        "resources: {time: '99999-00:00:00'}",
        "service.resources.time",
        "expected a SLURM time limit",
    ),
    ("service", "resources: {nodes: 0}", "service.resources.nodes", "must be from 1 to"),
    ("service", "n_ctx: 1000000000000000000000000000000", "service.n_ctx", "out of range"),
    ("service", "n_threads: -4", "service.n_threads", "out of range"),
    ("service", "model: " + "m" * 1_000_000, "service.model", "1000000 characters, at most 256"),
    ("service", "command: /bin/sh", "service.command", "'/bin/sh' is not the llamacpp program"),
    ("service", "command: 'llama-server --port 1'", "service.command", "expected a program"),
    (
        "client",
        "parameters: {concurrency: x}",
        "client.parameters.concurrency",
        "expected an integer",
    ),
    ("client", "parameters: {requests: -10}", "client.parameters.requests", "at least 1"),
    (
        "client",
        "parameters: {requests: 1000000000000000000000000000000}",
        "client.parameters.requests",
        "out of range",
    ),
    ("client", "parameters: {rate: .nan}", "client.parameters.rate", "not a finite number"),
    ("client", "parameters: {timeout: -1}", "client.parameters.timeout", "at least"),
    ("prometheus", "scrape_interval: 0s", "prometheus.scrape_interval", "out of range (1s to 1h)"),
]


@pytest.mark.parametrize(
    ("kind", "body", "key", "what"), WRONG_VALUES, ids=[f"{w[0]}:{w[1][:30]}" for w in WRONG_VALUES]
)
def test_issue_12_wrong_values_are_refused(
    tmp_path: Path, kind: str, body: str, key: str, what: str
) -> None:
    header = {
        "service": "service:\n  name: llm\n  type: llamacpp\n",
        "client": "client:\n",
        "prometheus": "prometheus:\n",
    }
    path = write(tmp_path, header[kind] + f"  {body}\n")
    message = refused(LOADERS[kind], path)
    assert f"{path}: {key}" in message
    assert what in message
    assert len(message) < 400


@pytest.mark.parametrize(
    ("body", "key", "what"),
    [
        ("scrape_interval: 2h", "prometheus.scrape_interval", "out of range"),
        (
            "{scrape_interval: 5s, scrape_timeout: 10s}",
            "prometheus.scrape_timeout",
            "longer than scrape_interval 5s",
        ),
        ("evaluation_interval: 0s", "prometheus.evaluation_interval", "out of range"),
        ("retention: 1s", "prometheus.retention", "out of range"),
        ("retention_size: lots", "prometheus.retention_size", "expected a size"),
        (
            "monitoring_targets: [{host: 'a b', port: 1}]",
            "prometheus.monitoring_targets[0].host",
            "host name",
        ),
        (
            "monitoring_targets: [{host: n1, port: 1, metrics_path: x}]",
            "prometheus.monitoring_targets[0].metrics_path",
            "URL path",
        ),
    ],
)
def test_prometheus_values_are_bounded(tmp_path: Path, body: str, key: str, what: str) -> None:
    text = f"prometheus: {body}\n" if body.startswith("{") else f"prometheus:\n  {body}\n"
    path = write(tmp_path, text)
    message = refused(load_prometheus, path)
    assert f"{path}: {key}" in message and what in message


@pytest.mark.parametrize(
    ("body", "key", "what"),
    [
        ("time: '1:00'", None, None),
        ("time: 90", None, None),
        ("time: 1:30:00", None, None),  # YAML 1.2: the text SLURM reads, not 5400
        ("time: '2-12'", None, None),
        ("time: '365-00:00:00'", None, None),
        ("time: '366-00:00:00'", "time", "at most 365 days"),
        ("time: '1:61:00'", "time", "61 is more than 59"),
        ("time: 0", "time", "more than 0"),
        ("nodes: 2-4", None, None),
        ("nodes: 4-2", "nodes", "must be from 1"),
        ("mem: 0", None, None),
        ("mem: 2000T", "mem", "more than 1024T"),
        ("partition: 'debug; rm'", "partition", "expected a partition name"),
        ("gres: gpu:a100:2", None, None),
        ("gres: 'gpu 1'", "gres", "expected a GRES"),
        ("gpus: a100:2", None, None),
        ("extra_args: ['--exclusive', '--gres', 'gpu:1']", None, None),
        ("extra_args: ['--wrap=id']", "extra_args[0]", "--wrap is set by the session"),
        ("extra_args: ['--comm=x']", "extra_args[0]", "--comment is set by the session"),
        ("extra_args: ['-Jname']", "extra_args[0]", "-J is set by the session"),
        ("extra_args: ['--wait']", "extra_args[0]", "--wait is set by the session"),
        (
            "extra_args: ['/tmp/other.sh']",
            "extra_args[0]",
            "follows no option; sbatch would take it",
        ),
        ("extra_args: ['--exclusive=user', 'x']", "extra_args[1]", "follows no option"),
        ("extra_args: ['-G', '2']", None, None),
    ],
)
def test_slurm_resources(tmp_path: Path, body: str, key: str | None, what: str | None) -> None:
    path = write(tmp_path, f"service:\n  name: redis\n  resources:\n    {body}\n")
    if key is None:
        assert load_service(path)["resources"]
        return
    message = refused(load_service, path)
    assert f"{path}: service.resources.{key}" in message and what in message


def test_unquoted_hours_minutes_seconds_stay_text(tmp_path: Path) -> None:
    path = write(tmp_path, "service:\n  name: redis\n  resources: {time: 10:00:00}\n")
    assert load_service(path)["resources"]["time"] == "10:00:00"


@pytest.mark.parametrize(
    ("given", "seconds"),
    [
        ("30", 1800),
        ("5:30", 330),
        ("01:00:00", 3600),
        ("2-12", 216000),
        ("1-00:30", 88200),
        ("1-00:00:05", 86405),
    ],
)
def test_slurm_time_seconds(given: str, seconds: int) -> None:
    assert slurm_time_seconds(given) == seconds


@pytest.mark.parametrize(
    ("given", "seconds"), [("15s", 15), ("1h30m", 5400), ("500ms", 0.5), ("1d", 86400)]
)
def test_duration_seconds(given: str, seconds: float) -> None:
    assert duration_seconds(given) == seconds


@pytest.mark.parametrize(
    ("body", "key", "what"),
    [
        (
            "environment: {LD_PRELOAD: /tmp/x.so}",
            "service.environment.LD_PRELOAD",
            "run other code",
        ),
        ("environment: {BASH_ENV: /tmp/x}", "service.environment.BASH_ENV", "run other code"),
        ('environment: {A: "x\\ny"}', "service.environment.A", "control character"),
        ('password: "a\\u0000b"', "service.password", "control character"),
        ("command: redis-server", None, None),
        ("command: $HOME/bin/redis-server", None, None),
        ("command: 'redis-server; id'", "service.command", "expected a program"),
        (
            "install: {method: binary, binary: '$(id)'}",
            "service.install.binary",
            "expected a program",
        ),
        ("maxmemory: 0", None, None),
        ("ports: [0]", "service.ports[0]", "not a TCP port"),
        ("health_check: {retries: -1}", "service.health_check.retries", "out of range"),
    ],
)
def test_service_values(tmp_path: Path, body: str, key: str | None, what: str | None) -> None:
    path = write(tmp_path, f"service:\n  name: redis\n  {body}\n")
    if key is None:
        load_service(path)
        return
    message = refused(load_service, path)
    assert f"{path}: {key}" in message and what in message


def test_seed_command_naming_the_program_keeps_working(tmp_path: Path) -> None:
    path = write(tmp_path, "service: {name: ollama, command: ollama, args: [serve]}\n")
    service = load_service(path)
    assert service["install"] == {"method": "binary", "binary": "ollama"}
    assert any("service.args: not passed" in note for note in service["warnings"])


# --- extra_scrape_configs: structure in Python, then promtool -------------------------------


@pytest.mark.parametrize(
    ("configs", "key", "what"),
    [
        ("[{static_configs: []}]", "extra_scrape_configs[0].job_name", "missing"),
        (
            "[{job_name: x, scrape_intervall: 5s}]",
            "extra_scrape_configs[0].scrape_intervall",
            "unknown key (did you mean 'scrape_interval'?)",
        ),
        (
            "[{job_name: x, static_configs: [{targets: [nohostport]}]}]",
            "extra_scrape_configs[0].static_configs[0].targets[0]",
            "host:port",
        ),
        (
            "[{job_name: x, static_configs: [{targets: ['a:1'], labels: {__name__: y}}]}]",
            "extra_scrape_configs[0].static_configs[0].labels.__name__",
            "not a label name",
        ),
        (
            "[{job_name: x, scrape_interval: 10s, scrape_timeout: 20s}]",
            "extra_scrape_configs[0].scrape_timeout",
            "longer than the job's scrape interval 10s",
        ),
        (
            "[{job_name: x}, {job_name: x}]",
            "extra_scrape_configs[1].job_name",
            "already the job name",
        ),
        (
            "[{job_name: prometheus}]",
            "extra_scrape_configs[0].job_name",
            "the session's own Prometheus job",
        ),
        (
            "[{job_name: x, relabel_configs: [{action: explode}]}]",
            "extra_scrape_configs[0].relabel_configs[0].action",
            "not one of",
        ),
        ("{job_name: x}", "extra_scrape_configs", "expected a list"),
    ],
)
def test_extra_scrape_configs_structure(tmp_path: Path, configs: str, key: str, what: str) -> None:
    path = write(tmp_path, f"prometheus:\n  extra_scrape_configs: {configs}\n")
    message = refused(load_prometheus, path)
    assert f"{path}: prometheus.{key}" in message and what in message


@pytest.mark.skipif(not __import__("shutil").which("promtool"), reason="promtool is not on PATH")
def test_extra_scrape_configs_checked_by_promtool(tmp_path: Path) -> None:
    """A relabel regex that only Prometheus's RE2 parser refuses, before anything is submitted."""
    path = write(
        tmp_path,
        "prometheus:\n  extra_scrape_configs:\n"
        "    [{job_name: x, relabel_configs: [{action: keep, regex: '(unclosed'}]}]\n",
    )
    message = refused(load_prometheus, path)
    assert "prometheus.extra_scrape_configs: promtool check config: " in message
    assert "regexp" in message


@pytest.mark.parametrize(
    ("config", "key", "what"),
    [
        (
            "{job_name: x, file_sd_configs: [{files: [targets]}]}",
            "files[0]",
            "a .json, .yml or .yaml",
        ),
        ("{job_name: x, file_sd_configs: [{files: []}]}", "files", "at least 1 entries"),
        ("{job_name: x, relabel_configs: [{regex: a}]}", "target_label", "missing (action replace"),
        ("{job_name: x, relabel_configs: [{target_label: 'a b'}]}", "target_label", "label name"),
        ("{job_name: x, tls_config: {ca_file: ca.pem}}", "ca_file", "an absolute path"),
        (
            "{job_name: x, basic_auth: {password_file: $HOME/p}}",
            "password_file",
            "an absolute path",
        ),
    ],
)
def test_prometheus_rules_between_scrape_keys(tmp_path: Path, config: str, key: str, what: str):
    path = write(tmp_path, f"prometheus:\n  extra_scrape_configs: [{config}]\n")
    message = refused(load_prometheus, path)
    assert f".{key}: " in message and what in message


def test_every_shipped_recipe_loads() -> None:
    for path in sorted(RECIPES.rglob("*.y*ml")):
        kind = next(
            (kind for kind in ("prometheus", "client", "service") if kind in path.stem), None
        ) or ("client" if "benchmark" in path.stem or "parametric" in path.stem else "service")
        assert LOADERS[kind](path)["kind"] == kind, path


def test_a_valid_extra_scrape_config_is_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        prometheus:
          scrape_interval: 15s
          scrape_timeout: 10s
          extra_scrape_configs:
            - job_name: gpu
              scrape_interval: 30s
              metrics_path: /metrics
              params: {module: [http_2xx]}
              static_configs: [{targets: ["node1:9400"], labels: {site: testbed}}]
              relabel_configs: [{source_labels: [__address__], target_label: instance}]
        """,
    )
    prometheus = load_prometheus(path)
    assert prometheus["extra_scrape_configs"][0]["static_configs"][0]["targets"] == ["node1:9400"]
    assert prometheus["scrape_timeout"] == "10s"


def test_extra_scrape_config_may_not_take_the_session_jobs_names() -> None:
    service = load_service(RECIPES / "redis" / "service.yml")
    client = load_client(RECIPES / "redis" / "client.yml")
    prometheus = load_prometheus(RECIPES / "redis" / "prometheus.yml")
    prometheus["extra_scrape_configs"] = [{"job_name": service["exporter_job"]}]
    with pytest.raises(RecipeError, match="is the job name of the service's exporter"):
        check_pairing(service, client, prometheus)


# --- reading files: every failure one line naming the file ----------------------------------


def bomb(levels: int = 9) -> str:
    lines = ['l0: &l0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "a binary file (NUL bytes)"),
        ("service: {name: redis}\n".encode("utf-16"), "UTF-16 text; save the recipe as UTF-8"),
        ("service: {name: redis}\n".encode("utf-32"), "UTF-32 text"),
        (b"service: {name: \xff}\n", "not UTF-8 text (byte 0xff at offset 16)"),
        (b"service:\n  name: a\n  name: b\n", "line 3: duplicate key 'name' (first at line 2)"),
        (b"service: " + b"[" * 100 + b"]" * 100 + b"\n", "nested more than 64 levels deep"),
        (bomb().encode(), "expands to more than 100000 values (an alias bomb?)"),
        (b"a: &a [*a]\n", "an alias refers to a value that contains it"),
        (b"service: {port: " + b"9" * 5000 + b"}\n", "a value cannot be read"),
        (b"service: {when: 2024-13-45}\n", "a value cannot be read (month must be in 1..12)"),
        (b"service: !!python/object:os.system {}\n", "could not determine a constructor"),
        (b"service: {name: [unclosed}\n", "line 1:"),
    ],
)
@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_unreadable_files_are_one_line(
    tmp_path: Path, kind: str, content: bytes, what: str
) -> None:
    path = tmp_path / "recipe.yml"
    path.write_bytes(content)
    assert what in refused(LOADERS[kind], path)


def test_a_folder_is_not_a_recipe(tmp_path: Path) -> None:
    assert refused(load_service, tmp_path) == f"{tmp_path}: is a folder, not a recipe file"


def test_a_device_is_not_a_recipe() -> None:
    with pytest.raises(RecipeError, match=r"^/dev/zero: not a regular file$"):
        load_service(Path("/dev/zero"))


def test_an_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "service: {name: redis}\n")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", denied)  # root reads any file: refuse it here instead
    assert refused(load_service, path) == f"{path}: not readable (permission denied)"


def test_a_huge_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recipe_yaml, "MAX_FILE_BYTES", 100)
    path = write(tmp_path, "service: {name: redis}\n" + "#" * 200 + "\n")
    assert "a recipe file is at most 100 bytes" in refused(load_service, path)


def test_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        service:
          name: redis
          resources: &common {cpus_per_task: 2, time: "01:00:00"}
          environment:
            A: "1"
        """,
    )
    assert load_service(path)["resources"]["cpus_per_task"] == 2


# --- seed-era keys that ask for commands: accepted, never run, one note each (issue 10) ------


def test_keys_that_ask_for_commands_get_a_note_each(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        client:
          build_commands: ["pip install chromadb", "pip install numpy"]
          script: {name: bench.py, local_path: scripts/}
          container:
            docker_source: docker://python:3.11
            build_commands: ["apt-get install -y curl"]
          parameters: {requests: 5}
        """,
    )
    notes = load_client(path)["warnings"]
    for key in (
        "build_commands (2 commands)",
        "script",
        "container.docker_source",
        "container.build_commands",
    ):
        (note,) = [note for note in notes if f"client.{key}:" in note]
        assert note.startswith(f"{path}: client.{key}: not ")
        assert "\n" not in note


@pytest.mark.parametrize("kind", ["service", "prometheus"])
def test_service_and_prometheus_build_commands_are_not_run(tmp_path: Path, kind: str) -> None:
    name = "redis" if kind == "service" else "prometheus"
    path = write(tmp_path, f"service:\n  name: {name}\n  build_commands: [make]\n")
    loaded = LOADERS[kind](path)
    assert any(".build_commands: not run;" in note for note in loaded["warnings"])


# --- the pre-submit time-limit check (issue 12 item 4) --------------------------------------


@pytest.mark.parametrize(
    ("requests", "duration", "rate", "ramp", "seconds"),
    [
        (100, None, 10.0, 0.0, 10.0),  # open loop: requests / rate
        (100, None, 10.0, 4.0, 12.0),  # plus half the ramp
        (100, 5.0, 10.0, 0.0, 5.0),  # the duration ends it first
        (None, 30.0, None, 0.0, 30.0),  # closed loop for a duration
        (100, None, None, 0.0, None),  # closed loop: the server's speed decides
    ],
)
def test_point_seconds(requests, duration, rate, ramp, seconds) -> None:
    assert point_seconds(requests, duration, rate, ramp) == seconds


@pytest.mark.parametrize(
    ("parameters", "api", "seconds"),
    [
        ({"rate": 10, "requests": 600}, "http", 60.0),
        ({"rate": [5, 10], "requests": 100}, "http", 30.0),  # a sweep: every point
        ({"concurrency": [1, 2, 4], "duration": 20}, "openai", 60.0),
        ({"concurrency": 2, "duration": 20, "output_tokens": [16, 64]}, "openai", 40.0),
        ({"concurrency": 2, "requests": 40}, "openai", None),
        ({"rate": 10}, None, None),
    ],
)
def test_planned_load_seconds(parameters: dict, api: str | None, seconds: float | None) -> None:
    assert planned_load_seconds(parameters, api) == seconds


def job(source: str, time: str | None) -> dict:
    return {"source": source, "resources": {"time": time} if time else {}, "parameters": {}}


def test_time_limit_rule() -> None:
    service, client = job("s.yml", "00:01:00"), job("c.yml", None)
    (note,) = time_limit_notes(service, client, 300.0)
    assert note.startswith("s.yml: service.resources.time: 00:01:00 (1m) is shorter than")
    assert f"(about {(300 + START_ALLOWANCE_S) // 60}m in all)" in note
    assert "raise resources.time" in note
    # Long enough, unknown load, or no limit in the recipe: nothing to say.
    assert time_limit_notes(job("s.yml", "01:00:00"), client, 300.0) == []
    assert time_limit_notes(service, client, None) == []
    assert time_limit_notes(job("s.yml", None), client, 3000.0) == []


def test_time_limit_rule_counts_the_clients_linger() -> None:
    client = job("c.yml", "00:10:00")
    assert time_limit_notes(job("s.yml", None), client, 300.0) == []
    client["linger"] = 600
    (note,) = time_limit_notes(job("s.yml", None), client, 300.0)
    assert note.startswith("c.yml: client.resources.time: 00:10:00 (10m) is shorter than")


def test_time_limit_warning_from_the_recipes(tmp_path: Path) -> None:
    service = load_service(
        write(tmp_path, "service: {name: redis, resources: {time: '00:01:00'}}\n", "s.yml")
    )
    client = load_client(
        write(tmp_path, "client: {parameters: {rate: 50, duration: 300}}\n", "c.yml")
    )
    check_pairing(service, client)
    (note,) = [note for note in service["warnings"] if "resources.time" in note]
    assert note.startswith(f"{tmp_path / 's.yml'}: service.resources.time: 00:01:00")


def test_no_time_limit_warning_for_the_shipped_recipes() -> None:
    for folder in ("llamacpp", "ollama", "redis"):
        service = load_service(RECIPES / folder / "service.yml")
        check_pairing(service, load_client(RECIPES / folder / "client.yml"))
        assert service["warnings"] == []


# --- the CLI's own check before Ansible starts (python/hpcansible/run.py) ----------------------


def test_cli_names_a_folder_given_as_a_recipe(tmp_path: Path) -> None:
    import argparse

    from hpcansible import run
    from hpcansible.errors import UserError

    recipe = write(tmp_path, "service: {name: redis}\n")
    given = argparse.Namespace(recipes=[str(tmp_path), str(recipe), str(recipe)])
    with pytest.raises(UserError, match=r"^service recipe .*: is a folder, not a recipe file$"):
        run.recipe_paths(given, ROOT / "inventory" / "testbed")


def test_cli_prints_the_notes_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hpcansible import run

    paths = {kind: RECIPES / "redis" / f"{kind}.yml" for kind in LOADERS}
    paths["service"] = write(
        tmp_path, "service: {name: redis, resources: {time: '00:01:00'}}\n", "service.yml"
    )
    paths["client"] = write(
        tmp_path, "client: {build_commands: [make], parameters: {rate: 5, duration: 600}}\n"
    )
    run.check_recipes(paths)
    notes = capsys.readouterr().err.splitlines()
    assert any(
        line.startswith("note: ") and "client.build_commands: not run" in line for line in notes
    )
    assert any("service.resources.time: 00:01:00 (1m) is shorter than" in line for line in notes)
