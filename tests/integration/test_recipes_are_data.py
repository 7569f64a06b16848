"""Recipe values are data (issue 12 item 1): nothing a user hands in is ever a template.

One real `python -m hpcansible run --dry-run` on recipes that carry a distinct hostile
template in every field the checks accept: `{{ lookup('pipe', 'touch M/v_<id>') }}`,
`{% if lookup('pipe', 'touch M/s_<id>') %}{% endif %}` and `{# c_<id> #}`, each touching its
own marker file if Ansible ever evaluated it. The fields come from walking the recipe schema
(recipe_loaders, recipe_prometheus) and the client's option table, so a new key is covered
without editing this test; fields that refuse the payload are refused in one line before
anything starts. The CLI's own inputs carry payloads too: the folder of the recipes, the site
profile's folder, a prompts file, and (in a second run) the session id.

A dry run submits nothing: it needs the testbed's SLURM only for `sinfo --version`. Passing
means no marker exists, and every payload the checks hand to Ansible comes out of the
rendered job scripts, configs and session.json as the literal text (shell-quoted in scripts).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.hpcansible.hpc.plugins.module_utils import (
    recipe_prometheus,
    recipe_resources,
    recipe_schema,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_loaders import (
    CLIENT_KEYS,
    COMMON_SERVICE_KEYS,
    SERVICE_KEYS_BY_TYPE,
    check_pairing,
    load_client,
    load_prometheus,
    load_service,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_schema import RecipeError
from hpcansible_jobs.bench import config as bench_config
from testbed_support import PYTHON, ROOT, run, unique

MISSING = object()
# Where a required key refuses the payload, a plain value keeps the rest of its mapping.
REQUIRED_SAMPLES = {
    "job_name": "hostile",
    "targets": ["node1:9999"],
    "files": ["hostile.yml"],
    "target_label": "hostile",
}


def template_payload(markers: Path, name: str) -> str:
    """The three template forms, each touching its own marker if it were ever evaluated."""
    return (
        f"{{{{ lookup('pipe', 'touch {markers}/v_{name}') }}}}"
        f"{{% if lookup('pipe', 'touch {markers}/s_{name}') %}}{{% endif %}}"
        f"{{# c_{name} #}}"
    )


class Payloads:
    """A distinct hostile template per field; `fields` maps each id to the key it went into."""

    def __init__(self, markers: Path) -> None:
        self.markers = markers
        self.fields: dict[str, str] = {}

    def __call__(self, where: str) -> str:
        field = f"f{len(self.fields):03d}"
        self.fields[field] = where
        return self.text_of(field)

    def text_of(self, field: str) -> str:
        return template_payload(self.markers, field)


def hostile(checker: Callable, where: str, payload: Payloads) -> Any:
    """A value for `checker` with a payload in every string it accepts, keys included."""
    fields = getattr(checker, "fields", None)
    if fields is not None:
        value = {}
        for key, inner in fields.items():
            item = hostile(inner, f"{where}.{key}", payload)
            if item is MISSING and key in getattr(checker, "required", ()):
                item = REQUIRED_SAMPLES[key]
            if item is not MISSING:
                value[key] = item
        return value
    item = getattr(checker, "item", None)
    if item is not None:
        element = hostile(item, f"{where}[0]", payload)
        return MISSING if element is MISSING or element == {} else [element]
    if checker in (recipe_resources.environment, recipe_schema.string_map):
        return {"HOSTILE": payload(f"{where}.HOSTILE")}
    if checker is recipe_prometheus.label_values:
        return {"hostile": payload(f"{where}.hostile")}
    if checker is recipe_prometheus.url_params:  # free keys: a payload as a key too
        return {payload(f"{where}.<key>"): [payload(f"{where}.<value>")]}
    if checker is recipe_schema.any_mapping:  # the client's parameters: its own option table
        return client_parameters(where, payload)
    value = payload(where)
    try:
        checker(value, where)
    except RecipeError:
        payload.fields.popitem()
        return MISSING
    return value


def client_parameters(where: str, payload: Payloads) -> dict:
    """Every client option that takes text, with a payload (the session's own ones left out)."""
    parameters: dict[str, Any] = {"requests": 4}
    for option in bench_config.OPTIONS:
        # The native tools' and Chroma's options pick another engine than the Python one these
        # services' clients run (and are refused with it); their text reaches a job the same way.
        if option.group in ("native", "chroma"):
            continue
        if option.name in bench_config.SESSION_OPTIONS or option.kind not in (
            "str",
            "headers",
            "json_object",
        ):
            continue
        place = f"{where}.{option.name}"
        if option.kind == "str":
            value: Any = payload(place)
        elif option.kind == "headers":
            value = {"X-Hostile": payload(place)}
        else:
            value = {payload(f"{place}.<key>"): payload(f"{place}.<value>")}
        try:
            bench_config.check_parameters({**parameters, option.name: value}, where)
        except bench_config.UserError:
            continue
        parameters[option.name] = value
    return parameters


def keep_what_loads(loader: Callable, path: Path, document: dict) -> None:
    """Write the recipe, dropping each key the checks refuse (a payload they do not accept
    where another key gives it meaning), until it loads."""
    for _ in range(100):
        path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
        try:
            loader(path)
            return
        except RecipeError as error:
            key = re.match(rf"{re.escape(str(path))}: ([^:]+): (missing)?", str(error))
            assert key, str(error)
            name = key.group(1).rsplit(".", 1)[-1]
            if key.group(2) and name in REQUIRED_SAMPLES:  # a rule between keys: give it
                place(document, key.group(1), REQUIRED_SAMPLES[name])
            else:
                drop(document, key.group(1))
    raise AssertionError(f"{path} does not load")


def key_parts(key: str) -> list[str | int]:
    """`prometheus.extra_scrape_configs[0].x` -> ['prometheus', 'extra_scrape_configs', 0, 'x']"""
    return [int(part) if part.isdigit() else part for part in re.split(r"[.\[\]]+", key) if part]


def drop(document: dict, key: str) -> None:
    *parents, last = key_parts(key)
    target: Any = document
    for part in parents:
        target = target[part]
    del target[last]


def place(document: dict, key: str, value: Any) -> None:
    *parents, last = key_parts(key)
    target: Any = document
    for part in parents:
        target = target[part]
    target[last] = value


def hostile_recipes(tmp: Path, service_type: str = "llamacpp") -> dict[str, Any]:
    """The three recipes with a payload in every field the checks accept, in a folder and
    with a site profile whose names carry payloads; checked as the CLI checks them."""
    markers = tmp / "markers"
    markers.mkdir()
    payload = Payloads(markers)
    # The CLI's inputs: the recipes' folder and the site profile's folder carry payloads too.
    recipes = tmp / payload("the recipes' folder (a CLI argument)")
    recipes.mkdir(parents=True)
    profile = tmp / payload("--profile (a CLI argument)") / "testbed"
    shutil.copytree(ROOT / "inventory" / "testbed", profile)
    prompts = recipes / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": payload("a prompts file's prompt")}) + "\n")

    keys = {**COMMON_SERVICE_KEYS, **SERVICE_KEYS_BY_TYPE[service_type]}
    service = hostile(recipe_schema.mapping(keys), "service", payload)
    service.update(name="hostile", type=service_type)
    service["resources"] = {**service.get("resources", {}), "cpus_per_task": 1}
    client = hostile(recipe_schema.mapping(CLIENT_KEYS), "client", payload)
    client.pop("target_service", None)  # its name must be the service's: checked, not carried
    client["parameters"]["prompts"] = str(prompts)
    # The seed-era form of the Prometheus recipe: top-level `service:` named prometheus.
    prometheus = hostile(
        recipe_schema.mapping(recipe_prometheus.PROMETHEUS_KEYS), "prometheus", payload
    )
    prometheus["name"] = "prometheus"
    # Prometheus's own rules: a password or a password file, basic auth or authorization.
    for config in prometheus.get("extra_scrape_configs", []):
        config.pop("authorization", None)
        config.get("basic_auth", {}).pop("password_file", None)
    paths = {kind: recipes / f"{kind}.yml" for kind in ("service", "client", "prometheus")}
    keep_what_loads(load_service, paths["service"], {"service": service})
    keep_what_loads(load_client, paths["client"], {"client": client})
    keep_what_loads(load_prometheus, paths["prometheus"], {"service": prometheus})
    loaded = {
        "service": load_service(paths["service"]),
        "client": load_client(paths["client"]),
        "prometheus": load_prometheus(paths["prometheus"]),
    }
    check_pairing(loaded["service"], loaded["client"], loaded["prometheus"])
    return {
        "markers": markers,
        "payload": payload,
        "paths": paths,
        "profile": profile,
        "loaded": loaded,
    }


@pytest.fixture(
    scope="module",
    # llama.cpp (the issue's own example); the other services' keys in the long run only.
    params=[
        "llamacpp",
        pytest.param("redis", marks=pytest.mark.slow),
        pytest.param("ollama", marks=pytest.mark.slow),
    ],
)
def hostile_run(request, slurm_testbed, tmp_path_factory) -> dict[str, Any]:
    """One real dry run of the whole session on the hostile recipes, per service type."""
    tmp = tmp_path_factory.mktemp(f"recipes_are_data_{request.param}")
    hostile_set = hostile_recipes(tmp, request.param)
    home = tmp / "home"
    session_id = unique("rsdata")
    argv = [
        PYTHON,
        "-m",
        "hpcansible",
        "run",
        "--dry-run",
        "--profile",
        str(hostile_set["profile"]),
    ]
    argv += ["--session-id", session_id, *map(str, hostile_set["paths"].values())]
    done = run(argv, timeout=600, HPCANSIBLE_HOME=str(home))
    return {**hostile_set, "done": done, "session_dir": home / "sessions" / session_id}


def carried_ids(value: Any, found: set[str]) -> set[str]:
    """The payload ids in the strings (and keys) of a loaded recipe."""
    if isinstance(value, str):
        found.update(re.findall(r"c_(f\d{3})", value))
    elif isinstance(value, dict):
        for key, item in value.items():
            carried_ids(key, found)
            carried_ids(item, found)
    elif isinstance(value, list):
        for item in value:
            carried_ids(item, found)
    return found


@pytest.mark.testbed
def test_dry_run_of_hostile_recipes_succeeds(hostile_run) -> None:
    done = hostile_run["done"]
    assert done.returncode == 0, done.stderr[-4000:]
    assert "dry run: nothing submitted" in done.stdout


@pytest.mark.testbed
def test_no_template_in_any_field_was_evaluated(hostile_run) -> None:
    payload = hostile_run["payload"]
    assert len(payload.fields) >= 60, payload.fields  # the walk reached the whole schema
    assert sorted(path.name for path in hostile_run["markers"].iterdir()) == []


@pytest.mark.testbed
def test_every_payload_handed_to_ansible_comes_out_literally(hostile_run) -> None:
    """Each payload in the checked recipes appears in the session's files as its own text."""
    payload, session = hostile_run["payload"], hostile_run["session_dir"]
    handed = carried_ids(hostile_run["loaded"], set())
    assert len(handed) >= 25
    # The session's own files (ansible-runner's artifacts under .runner/ hold diffs, not data).
    outputs = [
        path
        for folder in ("jobs", "client", "prometheus", "recipes")
        for path in (session / folder).rglob("*")
        if path.is_file() and path.suffix in (".sbatch", ".yml", ".json")
    ] + [session / "session.json"]
    texts = {path: path.read_text(errors="replace") for path in outputs}
    structured = {}
    for path, text in texts.items():
        if path.suffix in (".yml", ".json"):
            structured[path] = yaml.safe_load(text) if path.suffix == ".yml" else json.loads(text)
    found: set[str] = set()
    for path, data in structured.items():
        for string in strings(data):
            for field in re.findall(r"c_(f\d{3})", string):
                assert payload.text_of(field) in string, (path, payload.fields[field], string)
                found.add(field)
    for path, text in texts.items():
        if path.suffix == ".sbatch":
            found |= shell_words_with_payloads(text, payload, path)
    missing = {payload.fields[field] for field in handed - found}
    assert not missing, f"handed to Ansible but not in its output: {sorted(missing)}"


def strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def shell_words_with_payloads(script: str, payload: Payloads, path: Path) -> set[str]:
    """Job scripts: bash -n passes, and each payload is one shell word's literal text."""
    check = subprocess.run(
        ["bash", "-n"], input=script, text=True, capture_output=True, check=False
    )
    assert check.returncode == 0, f"{path}: {check.stderr}"
    found = set()
    for line in script.splitlines():
        fields = set(re.findall(r"c_(f\d{3})", line))
        if not fields or line.lstrip().startswith("#"):
            continue
        words = shlex.split(line, comments=False)
        for field in fields:
            assert any(payload.text_of(field) in word for word in words), (path, line)
            found.add(field)
    return found


@pytest.mark.testbed
def test_the_cli_inputs_carried_payloads(hostile_run) -> None:
    names = set(hostile_run["payload"].fields.values())
    assert {"the recipes' folder (a CLI argument)", "--profile (a CLI argument)"} <= names
    record = json.loads((hostile_run["session_dir"] / "session.json").read_text())
    assert "{{ lookup('pipe'" in record["recipes"]["service"]
    assert "{{ lookup('pipe'" in record["profile"]


@pytest.mark.testbed
def test_a_hostile_session_id_is_refused_and_never_evaluated(slurm_testbed, tmp_path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    session_id = "x" + template_payload(markers, "sid")
    done = run(
        [PYTHON, "-m", "hpcansible", "run", "--dry-run", "--session-id", session_id],
        timeout=300,
        HPCANSIBLE_HOME=str(tmp_path / "home"),
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()
    assert any("session id" in line and "letters, digits" in line for line in last), done.stderr[
        -2000:
    ]
    assert list(markers.iterdir()) == []


def test_extra_vars_reach_ansible_as_text(tmp_path: Path) -> None:
    """runner.write_unsafe_extravars: what the CLI hands ansible-playbook is never templated."""
    from hpcansible.runner import write_unsafe_extravars

    (tmp_path / "markers").mkdir()
    value = template_payload(tmp_path / "markers", "extravars")
    write_unsafe_extravars(tmp_path, {"given": value, "nested": {"list": [value]}})
    playbook = tmp_path / "show.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.copy: {content: '{{ given }} {{ nested.list[0] }}', dest: "
        f"'{tmp_path}/out'}}\n"
    )
    done = run(
        [
            "ansible-playbook",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"@{tmp_path}/env/extravars",
            "-e",
            "ansible_python_interpreter=" + PYTHON,
            str(playbook),
        ],
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert list((tmp_path / "markers").iterdir()) == []
    assert (tmp_path / "out").read_text() == f"{value} {value}"
    assert oct((tmp_path / "env" / "extravars").stat().st_mode & 0o777) == "0o600"
