"""Filter plugins: quoting for job scripts (shell.py), a session's jobs (session_jobs.py) and
ports (session_ports.py).

shell_path is checked by handing its output to a real bash, with HOME and SCRATCH set, and
comparing what bash prints with the intended expansion; a canary file shows that no command
in a path ever runs.
"""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.hpcansible.hpc.plugins.filter import shell as shell_plugin
from ansible_collections.hpcansible.hpc.plugins.filter.session_jobs import (
    running_session_job,
    session_jobs,
)
from ansible_collections.hpcansible.hpc.plugins.filter.session_ports import (
    avoid_ports,
    used_ports,
)
from ansible_collections.hpcansible.hpc.plugins.filter.shell import shell_path, shell_words
from ansible_collections.hpcansible.hpc.plugins.module_utils.slurm import poll_retries

FILTER_DIR = Path(shell_plugin.__file__).resolve().parent
HOME = "/home/u s"  # a space: the expansion must not split into two words
SCRATCH = "/scratch/u"


def bash_args(word: str, cwd: Path) -> list[str]:
    """The arguments bash passes to a command when `word` is written on its command line."""
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", f"printf '%s\\0' {word}"],
        cwd=cwd,
        env={"HOME": HOME, "SCRATCH": SCRATCH, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return done.stdout.split("\0")[:-1]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder with files a glob would match."""
    (tmp_path / "a.sif").write_text("")
    (tmp_path / "b.sif").write_text("")
    return tmp_path


# --- shell_path ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$HOME/containers/x.sif", f"{HOME}/containers/x.sif"),
        ("${SCRATCH}/results", f"{SCRATCH}/results"),
        ("~/models", f"{HOME}/models"),
        ("$SCRATCH", SCRATCH),
        ("$HOME$SCRATCH", f"{HOME}{SCRATCH}"),
        ("${HOME}x", f"{HOME}x"),
        ("/plain/path", "/plain/path"),
        ("with space/x", "with space/x"),
        ("*.sif", "*.sif"),
        ("$HOME/*", f"{HOME}/*"),
        ("a?b[c]", "a?b[c]"),
        ("~user/x", "~user/x"),
        ("x/~/y", "x/~/y"),
        ("$1/x", "$1/x"),
        ("$/x", "$/x"),
        ("${HOME:-/tmp}", "${HOME:-/tmp}"),
        ("it's", "it's"),
        ('say "hi"', 'say "hi"'),
        ("back\\slash", "back\\slash"),
        ("", ""),
        ("$UNSET_IN_TEST/x", "/x"),
    ],
)
def test_shell_path_expands_variables_only(workdir: Path, path: str, expected: str) -> None:
    assert bash_args(shell_path(path), workdir) == [expected]


@pytest.mark.parametrize(
    "path",
    [
        "$(touch CANARY)",
        "`touch CANARY`",
        "x; touch CANARY",
        "x && touch CANARY",
        "x | touch CANARY",
        "$HOME/$(touch CANARY)/`touch CANARY`",
        "${HOME}; touch CANARY #",
        "x\ntouch CANARY",
        "$((1+1))",
        "<(touch CANARY)",
    ],
)
def test_shell_path_never_runs_a_command(workdir: Path, path: str) -> None:
    expected = path.replace("$HOME", HOME).replace("${HOME}", HOME)
    assert bash_args(shell_path(path), workdir) == [expected]
    assert not (workdir / "CANARY").exists()


def test_shell_path_accepts_non_strings(workdir: Path) -> None:
    assert bash_args(shell_path(8080), workdir) == ["8080"]


def test_shell_path_output_form() -> None:
    assert shell_path("$HOME/containers/ollama.sif") == '"${HOME}"/containers/ollama.sif'
    assert shell_path("$(x)") == "'$(x)'"
    assert shell_path("") == "''"


# --- shell_words -----------------------------------------------------------------------------


def test_shell_words_example() -> None:
    words = shell_words(["redis-server", "--requirepass", "x; rm -rf ~"])
    assert words == "redis-server --requirepass 'x; rm -rf ~'"


@pytest.mark.parametrize(
    "args",
    [
        ["redis-server", "--requirepass", "x; touch CANARY"],
        ["a b", "", "$HOME", "`touch CANARY`", "$(touch CANARY)", "*", "it's", "\n"],
        ["--port", 6379, 1.5],
    ],
)
def test_shell_words_round_trip_through_bash(workdir: Path, args: list) -> None:
    assert bash_args(shell_words(args), workdir) == [str(arg) for arg in args]
    assert not (workdir / "CANARY").exists()


def test_shell_words_single_string_is_one_argument(workdir: Path) -> None:
    assert shell_words("a b; c") == "'a b; c'"
    assert bash_args(shell_words("a b; c"), workdir) == ["a b; c"]


def test_shell_words_empty_list() -> None:
    assert shell_words([]) == ""


# --- session_jobs ----------------------------------------------------------------------------


def job(job_id, session="s1", role="service", ports=(), **extra) -> dict:
    return {"job_id": job_id, "session": session, "role": role, "ports": list(ports), **extra}


HOSTVARS = {
    "localhost": {"ansible_connection": "local"},
    "node1": {
        "slurm_jobs": [
            job("10", role="service", ports=[11434, 8080]),
            job("12", session="s2", role="service", ports=[11435, 8081]),
        ]
    },
    "node2": {"slurm_jobs": [job("9", role="client", ports=[9101]), job("10", role="service")]},
    "node3": {"slurm_jobs": None},
    "login": {"slurm_pending_jobs": [job("13", session="s3", ports=[6379])]},
}


def test_session_jobs_of_one_session_oldest_first_once_each() -> None:
    jobs = session_jobs(HOSTVARS, "s1")
    assert [j["job_id"] for j in jobs] == ["9", "10"]  # numeric order, not text order


def test_session_jobs_of_one_role() -> None:
    assert [j["job_id"] for j in session_jobs(HOSTVARS, "s1", "client")] == ["9"]
    assert [j["job_id"] for j in session_jobs(HOSTVARS, "s2", "service")] == ["12"]


def test_session_jobs_unknown_session_or_role() -> None:
    assert session_jobs(HOSTVARS, "nope") == []
    assert session_jobs(HOSTVARS, "s1", "prometheus") == []


def test_session_jobs_pending_jobs_are_not_listed() -> None:
    assert session_jobs(HOSTVARS, "s3") == []


def test_session_jobs_integer_ids() -> None:
    hostvars = {"n": {"slurm_jobs": [job(100), job(20)]}}
    assert [j["job_id"] for j in session_jobs(hostvars, "s1")] == [20, 100]


def test_running_session_job_gives_node_nodes_and_ports_of_the_running_one() -> None:
    hostvars = {
        "node1": {
            "slurm_session": "s1",
            "slurm_jobs": [job("7", state="COMPLETED", nodes=["node1"])],
        },
        "node2": {"slurm_jobs": [job("8", state="RUNNING", nodes=["node2"], ports=[6379, 9256])]},
    }
    assert running_session_job(hostvars, "s1", "service") == {
        "node": "node2",
        "nodes": ["node2"],
        "ports": [6379, 9256],
        "state": "RUNNING",
    }


def test_running_session_job_fails_only_where_the_inventory_knows_the_session() -> None:
    knows = {
        "node1": {"slurm_session": "s1", "slurm_jobs": [job("7", role="client", state="FAILED")]}
    }
    with pytest.raises(AnsibleFilterError, match="no running client job of session s1"):
        running_session_job(knows, "s1", "client")
    assert running_session_job(knows, "s1", "client", required=False) == {}
    # a role used alone: no slurm_jobs inventory, nothing found, nothing to fail for
    assert running_session_job({"localhost": {}}, "s1", "client") == {}


# --- used_ports ------------------------------------------------------------------------------


def test_used_ports_of_every_session_including_pending_jobs() -> None:
    assert used_ports(HOSTVARS) == [6379, 8080, 8081, 9101, 11434, 11435]


def test_used_ports_string_ports_and_no_jobs() -> None:
    assert used_ports({"n": {"slurm_jobs": [{"job_id": 1, "ports": ["9090", 9090]}]}}) == [9090]
    assert used_ports({"n": {"slurm_jobs": [{"job_id": 1}]}}) == []
    assert used_ports({}) == []


# --- avoid_ports -----------------------------------------------------------------------------

ROLE_VARS = {
    "ollama_service_port": 11434,
    "cadvisor_port": 8080,
    "benchmark_client_metrics_port": 9101,
    "prometheus_port": 9090,
    "ollama_service_model": "gemma3:270m",
    "prometheus_static_targets": [{"targets": ["node1:9100"]}],
    "ollama_service_ports_note": 5,  # ends in neither _port nor is a port
}
PORT_NAMES = [name for name in ROLE_VARS if name.endswith("_port")]


def test_avoid_ports_no_collision_keeps_the_ports() -> None:
    assert avoid_ports(ROLE_VARS, [6379, 22]) == ROLE_VARS


def test_avoid_ports_smallest_offset() -> None:
    shifted = avoid_ports(ROLE_VARS, [8080, 8081, 9092])
    # offset 0 hits 8080, 1 hits 8081, 2 hits 9092 (prometheus 9090 + 2): 3 is the smallest free
    assert {name: shifted[name] for name in PORT_NAMES} == {
        "ollama_service_port": 11437,
        "cadvisor_port": 8083,
        "benchmark_client_metrics_port": 9104,
        "prometheus_port": 9093,
    }


def test_avoid_ports_result_collides_with_nothing_used() -> None:
    used = [8080, 8081, 8082, 9090, 9091, 9102, 11434, 11440]
    shifted = avoid_ports(ROLE_VARS, used)
    assert not {shifted[name] for name in PORT_NAMES} & set(used)
    offsets = {shifted[name] - ROLE_VARS[name] for name in PORT_NAMES}
    assert len(offsets) == 1  # every port moves by the same offset
    (offset,) = offsets
    for smaller in range(offset):
        assert {ROLE_VARS[name] + smaller for name in PORT_NAMES} & set(used)


def test_avoid_ports_leaves_other_variables_alone() -> None:
    shifted = avoid_ports(ROLE_VARS, [8080])
    for name in ROLE_VARS:
        if name not in PORT_NAMES:
            assert shifted[name] == ROLE_VARS[name]
    assert shifted["ollama_service_ports_note"] == 5


def test_avoid_ports_does_not_change_its_input() -> None:
    original = dict(ROLE_VARS)
    avoid_ports(ROLE_VARS, [8080])
    assert original == ROLE_VARS


def test_avoid_ports_string_port_values() -> None:
    assert avoid_ports({"prometheus_port": "9090"}, [9090]) == {"prometheus_port": 9091}


def test_avoid_ports_impossible() -> None:
    with pytest.raises(ValueError, match=r"no free ports within 5 above \[9090\]"):
        avoid_ports({"prometheus_port": 9090}, list(range(9090, 9095)), limit=5)


def test_avoid_ports_default_limit() -> None:
    with pytest.raises(ValueError, match="within 1000"):
        avoid_ports({"prometheus_port": 9090}, list(range(9090, 10090)))


# --- documentation ---------------------------------------------------------------------------


def filter_docs() -> dict[str, tuple[dict, object, dict]]:
    """Every filter's DOCUMENTATION, EXAMPLES and RETURN: in its .py file or a sidecar .yml."""
    docs = {}
    modules = [
        importlib.import_module(f"ansible_collections.hpcansible.hpc.plugins.filter.{path.stem}")
        for path in sorted(FILTER_DIR.glob("*.py"))
    ]
    for module in modules:
        embedded = yaml.safe_load(getattr(module, "DOCUMENTATION", "{}")) or {}
        for name in module.FilterModule().filters():
            if embedded.get("name") == name:
                docs[name] = (
                    embedded,
                    yaml.safe_load(module.EXAMPLES),
                    yaml.safe_load(module.RETURN),
                )
                continue
            sidecar = FILTER_DIR / f"{name}.yml"
            assert sidecar.is_file(), f"filter {name}: no documentation ({sidecar} missing)"
            doc = yaml.safe_load(sidecar.read_text())
            docs[name] = (doc["DOCUMENTATION"], yaml.safe_load(doc["EXAMPLES"]), doc["RETURN"])
    return docs


ALL_FILTERS = ["shell_path", "shell_words", "session_jobs", "used_ports", "avoid_ports"]
ALL_FILTERS += ["asks_for_gpus", "gpu_count"]  # plugins/filter/asks_for_gpus.py (issue 11)
ALL_FILTERS += ["scraped_since", "duration_seconds", "bcrypt_hash"]  # issues 8 and 12
ALL_FILTERS += ["scrape_after_load_timeout_s", "poll_retries"]
ALL_FILTERS += ["new_session_id", "tunnel_command"]  # issue 9: rules shared with the CLI
ALL_FILTERS += ["running_session_job"]  # issue 9: step 2 and 4 read the inventory through it


def test_every_filter_is_documented() -> None:
    assert sorted(filter_docs()) == sorted(ALL_FILTERS)


@pytest.mark.parametrize("name", ALL_FILTERS)
def test_filter_documentation_names_the_filter(name: str) -> None:
    documentation, examples, returns = filter_docs()[name]
    assert documentation["name"] == name
    assert documentation["short_description"]
    assert "_input" in documentation["options"]
    assert isinstance(examples, list) and examples
    assert f"hpcansible.hpc.{name}" in yaml.safe_dump(examples)
    assert "_value" in returns


def example_result(name: str) -> str:
    """The result an EXAMPLES entry shows in its trailing `# ...` comment."""
    module = shell_plugin if name == "shell_path" else None
    text = (
        module.EXAMPLES
        if module
        else yaml.safe_load((FILTER_DIR / f"{name}.yml").read_text())["EXAMPLES"]
    )
    comments = [line.strip()[2:] for line in text.splitlines() if line.strip().startswith("# ")]
    return comments[-1]


def test_documented_example_results_are_true() -> None:
    assert example_result("shell_path") == shell_path("$HOME/containers/ollama.sif")
    assert example_result("shell_words") == shell_words(
        ["redis-server", "--requirepass", "x; rm -rf ~"]
    )
    shifted = avoid_ports({"prometheus_port": 9090, "cadvisor_port": 8080}, [9090, 8080])
    assert example_result("avoid_ports") == str(shifted)
    assert example_result("poll_retries") == str(poll_retries(30, 0.25))


def test_no_stray_sidecar_docs() -> None:
    for sidecar in FILTER_DIR.glob("*.yml"):
        assert sidecar.stem in ALL_FILTERS, f"{sidecar}: documents no filter"
