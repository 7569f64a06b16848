"""The parts by audience (issue 9): imports run one way.

- hpcansible_jobs (what runs in the jobs) imports neither the CLI nor Ansible;
- the collection (plugins/) never imports the CLI package (hpcansible);
- nothing in python/ reaches code through sys.path;
- the client starts where Ansible, ansible-runner and the CLI cannot be imported.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def top_levels(folder: Path) -> dict[str, set[str]]:
    return {
        str(path.relative_to(ROOT)): {name.split(".")[0] for name in imported_modules(path)}
        for path in folder.rglob("*.py")
    }


def test_the_jobs_part_imports_neither_the_cli_nor_ansible() -> None:
    forbidden = {"hpcansible", "ansible", "ansible_runner", "ansible_collections"}
    offenders = {
        path: found & forbidden
        for path, found in top_levels(ROOT / "python" / "hpcansible_jobs").items()
        if found & forbidden
    }
    assert offenders == {}


def test_the_collection_never_imports_the_cli() -> None:
    offenders = {
        path: found
        for path, found in top_levels(ROOT / "plugins").items()
        if "hpcansible" in found or "hpcansible_testbed" in found
    }
    assert offenders == {}


def test_nothing_in_python_reaches_code_through_sys_path() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "python").rglob("*.py")
        if "sys.path" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


@pytest.mark.parametrize("module", ["hpcansible_jobs.bench", "hpcansible_jobs.gpu_exporter"])
def test_the_job_programs_start_without_ansible_or_the_cli(module: str) -> None:
    blocked = "ansible", "ansible_runner", "ansible_collections", "hpcansible"
    code = (
        "import runpy, sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None  # import fails\n"
        f"sys.argv = [{module!r}, '--help']\n"
        f"runpy.run_module({module!r}, run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


@pytest.mark.parametrize(
    ("api", "parameters"),
    [("redis", {"engine": "native"}), ("postgres", {}), ("mysql", {}), ("openai", {})],
)
def test_checking_a_recipe_does_not_load_the_clients_http_stack(api: str, parameters) -> None:
    """The recipes action and the CLI check client options with the client's own rules before
    anything runs; that check must not import aiohttp (a quarter of a second, twice per
    session on a small login node: issue 9)."""
    code = (
        "import sys\n"
        "from hpcansible_jobs.bench.config import check_parameters\n"
        f"check_parameters({parameters!r}, 'client.parameters', api={api!r})\n"
        "print(sorted(name for name in ('aiohttp', 'yarl') if name in sys.modules))\n"
        "print(any(name.startswith('hpcansible_jobs.bench.native.') for name in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    http_stack, native_checked = done.stdout.split("\n")[:2]
    assert http_stack == "[]"
    assert native_checked == str(api != "openai")  # the native tools' own option checks ran
