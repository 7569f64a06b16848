"""Model names and the on-disk model store, laid out as real Ollama lays it out.

A pulled model is a manifest at OLLAMA_MODELS/manifests/<host>/<namespace>/<model>/<tag>, so a
role can check "already pulled" on disk exactly as it would with real Ollama. The stand-in writes
the small blobs (template, config) with their true sha256 names but not the multi-gigabyte model
weights: the model layer is listed in the manifest with a realistic size and a digest derived from
the name, and its blob file is absent. The config blob carries `"hpcansible_standin": true`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

# Ollama's name rules (types/model/name.go): each part starts with a letter or digit.
_HOST_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,349}")
_NAMESPACE_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")
_MODEL_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
_TAG_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
TEMPLATE_MEDIA_TYPE = "application/vnd.ollama.image.template"
TEMPLATE_TEXT = "{{ .Prompt }}"
QUANTIZATION = "Q4_K_M"
BYTES_PER_PARAMETER_Q4_K_M = 0.6  # about 4.85 bits per weight


@dataclass(frozen=True)
class ModelName:
    host: str
    namespace: str
    model: str
    tag: str

    @property
    def display(self) -> str:
        """The shortest form, as `ollama list` prints it: llama3.2:latest, user/m:tag, h/ns/m:t."""
        if self.host != DEFAULT_HOST:
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    def manifest_path(self, models_dir: Path) -> Path:
        return models_dir / "manifests" / self.host / self.namespace / self.model / self.tag


def parse_model_name(text: str) -> ModelName | None:
    """Parse "[host/][namespace/]model[:tag]"; None when Ollama would call the name invalid."""
    text = text.strip().split("@", 1)[0]  # a pinned digest does not change which manifest
    tag = DEFAULT_TAG
    colon = text.rfind(":")
    if colon > text.rfind("/"):
        text, tag = text[:colon], text[colon + 1 :]
    parts = text.split("/")
    if not 1 <= len(parts) <= 3:
        return None
    defaults = [DEFAULT_HOST, DEFAULT_NAMESPACE][: 3 - len(parts)]
    host, namespace, model = [*defaults, *parts]
    checks = ((_HOST_PART, host), (_NAMESPACE_PART, namespace), (_MODEL_PART, model))
    if not all(pattern.fullmatch(value) for pattern, value in checks):
        return None
    if not _TAG_PART.fullmatch(tag):
        return None
    return ModelName(host, namespace, model, tag)


def model_details(name: ModelName) -> dict[str, Any]:
    """Plausible `details` for a name: family from its letters, size from a tag like 3b/270m."""
    family_match = re.match(r"[a-z]+", name.model.lower())
    family = family_match.group(0) if family_match else "llama"
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": _parameter_size(name.tag),
        "quantization_level": QUANTIZATION,
    }


def _parameter_size(tag: str) -> str:
    match = re.match(r"(?:.*?-)?(\d+(?:\.\d+)?)([bm])(?![a-z])", tag.lower())
    if match is None:
        return "1B"
    return f"{match.group(1)}{match.group(2).upper()}"


def _parameter_count(parameter_size: str) -> int:
    scale = 1e9 if parameter_size.endswith("B") else 1e6
    return int(float(parameter_size[:-1]) * scale)


@dataclass(frozen=True)
class StoredModel:
    name: ModelName
    manifest_digest: str  # "sha256:<hex>" of the manifest bytes, as /api/tags reports
    size: int
    modified_ns: int  # manifest mtime in nanoseconds since the epoch
    details: dict[str, Any]

    @property
    def parameter_count(self) -> int:
        return _parameter_count(self.details["parameter_size"])


@dataclass(frozen=True)
class PullLayer:
    digest: str
    size: int


class ModelStore:
    """The OLLAMA_MODELS directory."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir
        # name -> (manifest path, its identity, what it says): a generation request then costs one
        # stat() rather than two reads, a parse and a sha256, when it should be cheapest.
        self._known: dict[ModelName, tuple[str, tuple[int, ...], StoredModel]] = {}

    def is_pulled(self, name: ModelName) -> bool:
        return name.manifest_path(self.models_dir).is_file()

    def get(self, name: ModelName) -> StoredModel | None:
        known = self._known.get(name)
        path = known[0] if known is not None else str(name.manifest_path(self.models_dir))
        try:
            status = os.stat(path)
        except OSError:
            self._known.pop(name, None)
            return None
        # Manifests are replaced, never rewritten in place: a new file is a new inode. Its config
        # blob is named by its digest in the manifest, so the same manifest means the same config.
        identity = (status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
        if known is not None and known[1] == identity:
            return known[2]
        stored = self._read(name, path, status.st_mtime_ns)
        if stored is None:
            self._known.pop(name, None)
        else:
            self._known[name] = (path, identity, stored)
        return stored

    def _read(self, name: ModelName, path: str, modified_ns: int) -> StoredModel | None:
        try:
            with open(path, "rb") as manifest_file:
                raw = manifest_file.read()
            manifest = json.loads(raw)
        except (OSError, ValueError):
            return None
        layers = [manifest.get("config", {}), *manifest.get("layers", [])]
        size = sum(int(layer.get("size", 0)) for layer in layers)
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        details = self._details_from_config(manifest) or model_details(name)
        return StoredModel(name, digest, size, modified_ns, details)

    def _details_from_config(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        try:
            config_digest = manifest["config"]["digest"]
            config = json.loads(self._blob_path(config_digest).read_bytes())
        except (KeyError, TypeError, OSError, ValueError):
            return None
        family = config.get("model_family", "")
        return {
            "parent_model": "",
            "format": config.get("model_format", "gguf"),
            "family": family,
            "families": config.get("model_families") or [family],
            "parameter_size": config.get("model_type", ""),
            "quantization_level": config.get("file_type", ""),
        }

    def all_models(self) -> list[StoredModel]:
        manifests = self.models_dir / "manifests"
        found = []
        for path in manifests.glob("*/*/*/*"):
            host, namespace, model, tag = path.relative_to(manifests).parts
            stored = self.get(ModelName(host, namespace, model, tag))
            if stored is not None:
                found.append(stored)
        return sorted(found, key=lambda stored: stored.modified_ns, reverse=True)

    def delete(self, name: ModelName) -> bool:
        try:
            name.manifest_path(self.models_dir).unlink()
        except FileNotFoundError:
            return False
        return True

    def plan_pull(self, name: ModelName) -> tuple[list[PullLayer], bytes, dict[str, bytes]]:
        """Layers to report, the manifest to write, and the small blobs (by digest) to write."""
        details = model_details(name)
        model_size = int(_parameter_count(details["parameter_size"]) * BYTES_PER_PARAMETER_Q4_K_M)
        model_digest = (
            "sha256:" + hashlib.sha256(f"hpcansible-standin:{name.display}".encode()).hexdigest()
        )
        template = TEMPLATE_TEXT.encode()
        template_digest = _digest(template)
        config = json.dumps(
            {
                "model_format": "gguf",
                "model_family": details["family"],
                "model_families": details["families"],
                "model_type": details["parameter_size"],
                "file_type": details["quantization_level"],
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [model_digest, template_digest]},
                "hpcansible_standin": True,
            },
            separators=(",", ":"),
        ).encode()
        config_digest = _digest(config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_MEDIA_TYPE,
                "config": {
                    "mediaType": CONFIG_MEDIA_TYPE,
                    "digest": config_digest,
                    "size": len(config),
                },
                "layers": [
                    {"mediaType": MODEL_MEDIA_TYPE, "digest": model_digest, "size": model_size},
                    {
                        "mediaType": TEMPLATE_MEDIA_TYPE,
                        "digest": template_digest,
                        "size": len(template),
                    },
                ],
            },
            separators=(",", ":"),
        ).encode()
        layers = [
            PullLayer(model_digest, model_size),
            PullLayer(template_digest, len(template)),
            PullLayer(config_digest, len(config)),
        ]
        return layers, manifest, {template_digest: template, config_digest: config}

    def write_pull(self, name: ModelName, manifest: bytes, blobs: dict[str, bytes]) -> None:
        for digest, content in blobs.items():
            _write_atomically(self._blob_path(digest), content)
        _write_atomically(name.manifest_path(self.models_dir), manifest)

    def _blob_path(self, digest: str) -> Path:
        return self.models_dir / "blobs" / digest.replace(":", "-")


def _digest(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def _write_atomically(path: Path, content: bytes) -> None:
    # A concurrent `ollama list` or role check must never see a half-written manifest.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)
