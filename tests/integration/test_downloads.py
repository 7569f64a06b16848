"""The roles' one-time verified downloads, against a release server on 127.0.0.1.

On a cluster the roles fetch cAdvisor, Ollama and Prometheus once into the shared cache,
checked by sha256, and skip the download when the right file is already there. Here the
"release server" is a local http.server holding files shaped like the real releases.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hpcansible.processes import end_process
from testbed_support import ROOT, VENV_BIN, free_port, run


@pytest.fixture
def release_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    files = tmp_path / "releases"
    files.mkdir()
    port = free_port()
    server = subprocess.Popen(
        [str(VENV_BIN / "python"), "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=files,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            if run(["sh", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"]).returncode == 0:
                break
            subprocess.run(["sleep", "0.1"], check=False)
        yield f"http://127.0.0.1:{port}", files
    finally:
        end_process(server)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def converge(tmp_path: Path, role: str, variables: dict) -> subprocess.CompletedProcess:
    play = [
        {
            "name": f"install {role}",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                "hpcansible_session_id": "downloads",
                "hpcansible_session_dir": str(tmp_path / "session"),
                **variables,
            },
            "tasks": [
                {
                    "name": "Install",
                    "ansible.builtin.include_role": {"name": f"hpcansible.hpc.{role}"},
                    "tags": [f"{role}_install"],
                }
            ],
        }
    ]
    playbook = tmp_path / "install.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    return run(
        [
            "ansible-playbook",
            "-i",
            str(ROOT / "inventory" / "testbed" / "hosts.yml"),
            str(playbook),
            "--tags",
            f"{role}_install",
        ],
        timeout=120,
    )


def download_changed(done: subprocess.CompletedProcess) -> bool:
    """Whether the download task reported a change (the default callback's output)."""
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "Download once, verified" in line)
    status = next(line for line in lines[header + 1 :] if line.startswith(("ok:", "changed:")))
    return status.startswith("changed:")


def test_cadvisor_is_downloaded_once_and_verified(tmp_path, release_server):
    url, files = release_server
    binary = b"#!/bin/sh\necho cadvisor stand-in release\n"
    (files / "cadvisor-v0.49.1-linux-amd64").write_bytes(binary)
    variables = {
        "cadvisor_install_method": "download",
        "cadvisor_download_url": f"{url}/cadvisor-v0.49.1-linux-amd64",
        "cadvisor_checksum": sha256(binary),
        "cadvisor_cache_dir": str(tmp_path / "cache"),
    }
    first = converge(tmp_path, "cadvisor", variables)
    assert first.returncode == 0, first.stdout[-3000:]
    assert download_changed(first)
    cached = tmp_path / "cache" / "cadvisor" / "0.49.1" / "cadvisor"
    assert cached.read_bytes() == binary and cached.stat().st_mode & 0o111
    second = converge(tmp_path, "cadvisor", variables)
    assert second.returncode == 0 and not download_changed(second)


def test_a_wrong_checksum_is_refused(tmp_path, release_server):
    url, files = release_server
    (files / "cadvisor").write_bytes(b"tampered")
    done = converge(
        tmp_path,
        "cadvisor",
        {
            "cadvisor_install_method": "download",
            "cadvisor_download_url": f"{url}/cadvisor",
            "cadvisor_checksum": sha256(b"the real release"),
            "cadvisor_cache_dir": str(tmp_path / "cache"),
        },
    )
    assert done.returncode != 0
    assert "checksum" in done.stdout.lower()
    assert not (tmp_path / "cache" / "cadvisor" / "0.49.1" / "cadvisor").exists()


def test_a_download_without_checksum_is_refused(tmp_path, release_server):
    url, _ = release_server
    done = converge(
        tmp_path,
        "cadvisor",
        {"cadvisor_install_method": "download", "cadvisor_download_url": f"{url}/cadvisor"},
    )
    assert done.returncode != 0
    assert "set its checksum (sha256:<hex>)" in done.stdout


def test_ollama_release_archive_is_unpacked_once(tmp_path, release_server):
    url, files = release_server
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        data = b"#!/bin/sh\necho ollama\n"
        member = tarfile.TarInfo("bin/ollama")
        member.size, member.mode = len(data), 0o755
        tar.addfile(member, io.BytesIO(data))
    (files / "ollama-linux-amd64.tgz").write_bytes(archive.getvalue())
    variables = {
        "ollama_service_install_method": "download",
        "ollama_service_download_url": f"{url}/ollama-linux-amd64.tgz",
        "ollama_service_checksum": sha256(archive.getvalue()),
        "ollama_service_cache_dir": str(tmp_path / "cache"),
        "ollama_service_models_dir": str(tmp_path / "models"),
    }
    first = converge(tmp_path, "ollama_service", variables)
    assert first.returncode == 0, first.stdout[-3000:]
    assert (tmp_path / "cache" / "ollama" / "0.6.5" / "bin" / "ollama").stat().st_mode & 0o111
    second = converge(tmp_path, "ollama_service", variables)
    assert second.returncode == 0 and not download_changed(second)


def test_prometheus_release_gives_prometheus_and_promtool(tmp_path, release_server):
    url, files = release_server
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name in ("prometheus", "promtool"):
            data = f"#!/bin/sh\necho {name}\n".encode()
            member = tarfile.TarInfo(f"prometheus-2.53.2.linux-amd64/{name}")
            member.size, member.mode = len(data), 0o755
            tar.addfile(member, io.BytesIO(data))
    (files / "prometheus.tar.gz").write_bytes(archive.getvalue())
    done = converge(
        tmp_path,
        "prometheus",
        {
            "prometheus_install_method": "download",
            "prometheus_download_url": f"{url}/prometheus.tar.gz",
            "prometheus_checksum": sha256(archive.getvalue()),
            "prometheus_cache_dir": str(tmp_path / "cache"),
        },
    )
    assert done.returncode == 0, done.stdout[-3000:]
    unpacked = tmp_path / "cache" / "prometheus" / "2.53.2" / "prometheus-2.53.2.linux-amd64"
    assert (unpacked / "prometheus").stat().st_mode & 0o111
    assert (unpacked / "promtool").stat().st_mode & 0o111
