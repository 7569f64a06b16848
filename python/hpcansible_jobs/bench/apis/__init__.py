"""Protocol clients, one module per API shape; `make_client` picks one."""

from __future__ import annotations

from hpcansible_jobs.bench.apis.base import ApiClient
from hpcansible_jobs.bench.config import BenchConfig
from hpcansible_jobs.bench.prompts import Prompt


def make_client(config: BenchConfig, prompts: list[Prompt] | None = None) -> ApiClient:
    """The client for `config.api`; LLM clients need the prompt list."""
    if config.api == "ollama":
        from hpcansible_jobs.bench.apis.ollama import OllamaClient

        return OllamaClient(config, prompts or [])
    if config.api == "openai":
        from hpcansible_jobs.bench.apis.openai import OpenAiClient

        return OpenAiClient(config, prompts or [])
    if config.api == "http":
        from hpcansible_jobs.bench.apis.http import HttpClient

        return HttpClient(config)
    if config.api == "redis":
        from hpcansible_jobs.bench.apis.redis import RedisClient

        return RedisClient(config)
    if config.api == "chroma":  # issue 10: a vector database, on the Python engine
        from hpcansible_jobs.bench.apis.chroma import ChromaClient

        return ChromaClient(config)
    raise ValueError(f"unknown api {config.api}")
