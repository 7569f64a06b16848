"""The benchmark client: `python -m hpcansible bench`.

It sends requests to a service (Ollama, an OpenAI-compatible LLM server, plain HTTP or
Redis) in a closed or open loop, records every request's timestamps and writes LLM-grade
metrics (TTFT, TPOT, ITL, E2E, E2E from the intended send time) to an output directory.
Metric definitions: summary.DEFINITIONS (also written into summary.json).
"""
