"""Generated recipes (hypothesis, fixed seed): whatever a recipe file holds, the checks answer
with a normalized recipe or one line naming the file, never a traceback, and nothing beyond
validation runs (issue 12 item 6).

Three generators: raw bytes and YAML-ish text; recipes built from the shipped ones with values,
keys and structures replaced at random (keys drawn from the schema itself, so new keys are
fuzzed too); and the whole path the `recipes` action plugin runs (three loaders, the pairing,
the role variables) on a generated recipe among shipped ones. Every subprocess is recorded:
only promtool (a check) may run. Bounded example counts and `derandomize=True` keep it fast
and the same on every run.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_loaders import (
    CLIENT_KEYS,
    COMMON_SERVICE_KEYS,
    SERVICE_KEYS_BY_TYPE,
    check_pairing,
    load_client,
    load_prometheus,
    load_service,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_prometheus import (
    PROMETHEUS_KEYS,
)
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_role_vars import role_vars
from ansible_collections.hpcansible.hpc.plugins.module_utils.recipe_schema import RecipeError
from hpcansible_jobs.bench.config import OPTIONS_BY_NAME
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
LOADERS = {"service": load_service, "client": load_client, "prometheus": load_prometheus}


def fuzz(examples: int) -> settings:
    """Same examples on every run (derandomize, no example database), bounded in number."""
    return settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        # `commands` records across examples on purpose: one list for the whole test.
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )


def schema_keys(fields: dict) -> set[str]:
    """Every key of a schema, at every depth (mapping checkers keep theirs in `fields`)."""
    keys = set(fields)
    for checker in fields.values():
        inner = getattr(getattr(checker, "item", checker), "fields", None)
        if inner:
            keys |= schema_keys(inner)
    return keys


SERVICE_SCHEMA = {
    **COMMON_SERVICE_KEYS,
    **{k: v for t in SERVICE_KEYS_BY_TYPE.values() for k, v in t.items()},
}
KEYS = sorted(
    schema_keys(SERVICE_SCHEMA)
    | schema_keys(CLIENT_KEYS)
    | schema_keys(PROMETHEUS_KEYS)
    | set(OPTIONS_BY_NAME)
    | {"num_requests", "concurrent_requests", "max_tokens", "output_file", "service", "client"}
)
TRICKY_TEXT = [
    "{{ lookup('pipe', 'touch /tmp/hpcansible-fuzz') }}",
    "{% for x in range(9999999) %}{% endfor %}",
    "{# comment #}",
    "1:30:00",
    "00:01:00",
    "-01:00:00",
    "99999-00:00:00",
    "abc",
    "0s",
    "2h",
    "16GB",
    "gpu:1",
    "x; rm -rf ~",
    "$(touch /tmp/hpcansible-fuzz)",
    "--wrap=id",
    "node[1-3]",
    "http://localhost:1/x",
    "a\nb",
    "\x00",
    "",
    "1,2,x",
    "nan",
    "ttft_ms:-1",
    "m" * 5000,
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2, 65535, 65536, 10**30, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(TRICKY_TEXT),
)
KEY = st.one_of(st.sampled_from(KEYS), st.text(max_size=12), st.integers(-3, 3), st.none())
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEY, children, max_size=4),
    max_leaves=16,
)


def raw(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


BASES = {
    "service": [raw(RECIPES / folder / "service.yml") for folder in ("llamacpp", "ollama", "redis")]
    + [raw(RECIPES / "seed" / "ollama_with_cadvisor.yaml")],
    "client": [raw(RECIPES / folder / "client.yml") for folder in ("llamacpp", "ollama", "redis")]
    + [raw(RECIPES / "seed" / "ollama_benchmark.yaml")],
    "prometheus": [
        raw(RECIPES / "redis" / "prometheus.yml"),
        raw(RECIPES / "seed" / "prometheus_with_cadvisor.yaml"),
    ],
}


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> Any:
    """A shipped recipe with values replaced, keys added or removed, at the top or one deeper."""
    document = json.loads(json.dumps(draw(st.sampled_from(BASES[kind]))))
    body = next(iter(document.values()))
    for _ in range(draw(st.integers(1, 4))):
        target = body
        nested = [key for key, value in body.items() if isinstance(value, dict)]
        if nested and draw(st.booleans()):
            target = body[draw(st.sampled_from(nested))]
        action = draw(st.sampled_from(["replace", "add", "delete"]))
        if action == "delete" and target:
            del target[draw(st.sampled_from(sorted(target, key=str)))]
        elif action == "replace" and target:
            target[draw(st.sampled_from(sorted(target, key=str)))] = draw(VALUES)
        else:
            target[draw(KEY)] = draw(VALUES)
    if draw(st.integers(1, 10)) == 10:
        document = draw(VALUES)  # not even a mapping with the right top-level key
    return document


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    """Every program started while the checks run: a job submitted would show up here."""
    started: list[list[str]] = []
    real = subprocess.Popen.__init__

    def recording(self, args, *rest, **options):
        started.append(
            [str(arg) for arg in args] if isinstance(args, list | tuple) else [str(args)]
        )
        return real(self, args, *rest, **options)

    monkeypatch.setattr(subprocess.Popen, "__init__", recording)
    yield started
    assert all(Path(argv[0]).name == "promtool" for argv in started), started


def assert_one_line(error: RecipeError, *paths: Path) -> None:
    message = str(error)
    assert "\n" not in message and "\r" not in message
    assert message.startswith(tuple(f"{path}:" for path in paths)), message
    assert "Traceback" not in message and "internal error" not in message
    assert len(message) <= 1000


def refusal(message: str, path: Path) -> str:
    """What a refusal is about, coarsely (for --hypothesis-show-statistics)."""
    reason = message.removeprefix(f"{path}: ")
    if reason.startswith(("line ", "character ", "not UTF-8", "a binary", "UTF-")):
        return "not YAML"
    return reason.split(":")[0].split("[")[0][:40]


def check_file(kind: str, path: Path) -> None:
    try:
        recipe = LOADERS[kind](path)
    except RecipeError as error:
        assert_one_line(error, path)
        event(f"refused: {refusal(str(error), path)}")
        return
    event("accepted")
    assert recipe["kind"] == kind
    json.dumps(recipe, allow_nan=False)  # what reaches Ansible is plain data, no NaN


def dumped(document: Any) -> bytes:
    try:
        return yaml.safe_dump(document, allow_unicode=True).encode("utf-8", "surrogatepass")
    except (yaml.YAMLError, UnicodeEncodeError):
        return repr(document).encode("utf-8", "surrogatepass")


YAMLISH = st.lists(
    st.sampled_from(
        [
            "service:",
            "client:",
            "prometheus:",
            "  name: redis",
            "  a: &x [1, 2]",
            "  b: *x",
            "  c: *y",
            "  <<: *x",
            "  !!python/object:os.system {}",
            "  time: 1:30:00",
            "  - 1",
            "  port: 08080",
            "\t",
            "---",
            "...",
            "  d: {e: [",
            "  key: value",
            "  key: value2",
            "  ? [a]\n  : b",
            "  f: !unsafe x",
            "\ufeff",
            "  resources: {cpus_per_task: -1}",
        ]
    )
    | st.text(max_size=20),
    max_size=12,
).map("\n".join)


@fuzz(300)
@given(
    kind=st.sampled_from(sorted(LOADERS)),
    content=st.one_of(
        st.binary(max_size=400), YAMLISH.map(lambda text: text.encode("utf-8", "surrogatepass"))
    ),
)
def test_any_bytes_give_a_recipe_or_one_line(commands, kind: str, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "recipe.yml"
        path.write_bytes(content)
        check_file(kind, path)


@fuzz(400)
@given(data=st.data(), kind=st.sampled_from(sorted(LOADERS)))
def test_mutated_recipes_give_a_recipe_or_one_line(commands, data, kind: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{kind}.yml"
        path.write_bytes(dumped(data.draw(mutated(kind))))
        check_file(kind, path)


@fuzz(200)
@given(
    data=st.data(),
    kind=st.sampled_from(sorted(LOADERS)),
    folder=st.sampled_from(["llamacpp", "ollama", "redis"]),
)
def test_the_whole_check_on_a_mutated_recipe_set(commands, data, kind: str, folder: str) -> None:
    """What the action plugin and `run --dry-run` run before anything is submitted."""
    paths = {name: RECIPES / folder / f"{name}.yml" for name in LOADERS}
    with tempfile.TemporaryDirectory() as tmp:
        paths[kind] = Path(tmp) / f"{kind}.yml"
        paths[kind].write_bytes(dumped(data.draw(mutated(kind))))
        try:
            recipes = {name: LOADERS[name](paths[name]) for name in LOADERS}
            check_pairing(recipes["service"], recipes["client"], recipes["prometheus"])
            variables, notes = role_vars(recipes, ["llamacpp"])
        except RecipeError as error:
            assert_one_line(error, *paths.values())
            event("refused")
            return
    event("accepted")
    json.dumps({"recipes": recipes, "role_vars": variables, "notes": notes}, allow_nan=False)
    assert all("\n" not in note for recipe in recipes.values() for note in recipe["warnings"])
