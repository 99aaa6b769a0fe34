"""Active probe: TTFT and per-token latency of a short streaming generation through the engine's own API."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import requests

PROMPT = "Explain in one sentence why decoding a language model is bound by memory bandwidth."


@dataclass(frozen=True)
class ProbeResult:
    engine: str
    endpoint: str
    ttft_ms: float | None
    tpot_ms: float | None  # mean gap between tokens after the first
    tokens: int
    total_ms: float
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "endpoint": self.endpoint,
            "ttftMs": None if self.ttft_ms is None else round(self.ttft_ms, 2),
            "tpotMs": None if self.tpot_ms is None else round(self.tpot_ms, 2),
            "tokens": self.tokens,
            "totalMs": round(self.total_ms, 2),
            "error": self.error,
        }


def _result(engine: str, endpoint: str, start: float, stamps: list[float], error: str | None = None) -> ProbeResult:
    total = (time.perf_counter() - start) * 1000
    ttft = (stamps[0] - start) * 1000 if stamps else None
    tpot = (stamps[-1] - stamps[0]) * 1000 / (len(stamps) - 1) if len(stamps) > 1 else None
    return ProbeResult(engine, endpoint, ttft, tpot, len(stamps), total, error)


def _vllm(endpoint: str, max_tokens: int, model: str | None, timeout_s: float) -> ProbeResult:
    session = requests.Session()
    if model is None:
        listing = session.get(f"{endpoint}/v1/models", timeout=timeout_s)
        listing.raise_for_status()
        model = str(listing.json()["data"][0]["id"])
    payload = {"model": model, "prompt": PROMPT, "max_tokens": max_tokens, "stream": True, "temperature": 0}
    start = time.perf_counter()
    stamps: list[float] = []
    with session.post(f"{endpoint}/v1/completions", json=payload, stream=True, timeout=timeout_s) as response:
        response.raise_for_status()
        for raw in response.iter_lines():
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            if any(choice.get("text") for choice in chunk.get("choices", [])):
                stamps.append(time.perf_counter())
    return _result("vllm", endpoint, start, stamps)


def _tgi(endpoint: str, max_tokens: int, timeout_s: float) -> ProbeResult:
    from text_generation import Client

    client = Client(endpoint, timeout=int(max(timeout_s, 1)))
    start = time.perf_counter()
    stamps: list[float] = []
    for response in client.generate_stream(PROMPT, max_new_tokens=max_tokens):
        if not response.token.special:
            stamps.append(time.perf_counter())
    return _result("tgi", endpoint, start, stamps)


def probe(
    endpoint: str, engine: str, max_tokens: int = 16, model: str | None = None, timeout_s: float = 30.0
) -> ProbeResult:
    """Stream `max_tokens` tokens and time them; errors are returned in the result, never raised."""
    endpoint = endpoint.rstrip("/")
    start = time.perf_counter()
    try:
        if engine == "vllm":
            return _vllm(endpoint, max_tokens, model, timeout_s)
        if engine == "tgi":
            return _tgi(endpoint, max_tokens, timeout_s)
        return _result(engine, endpoint, start, [], f"unknown engine {engine!r}; expected vllm or tgi")
    except Exception as error:  # report, do not crash the caller
        return _result(engine, endpoint, start, [], f"{type(error).__name__}: {str(error)[:300]}")
