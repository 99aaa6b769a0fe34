"""Active probe: TTFT and per-token latency of a short streaming generation through the engine's own API."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from llmop.autoscale.http_errors import safe_text
from llmop.engines import adapter
from llmop.engines.base import TokenStream

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


def _result(engine: str, endpoint: str, stream: TokenStream, error: str | None = None) -> ProbeResult:
    """TTFT at the first chunk; TPOT over the tokens after the first (the engine's count), first to last chunk."""
    total = (time.perf_counter() - stream.sent) * 1000
    arrivals = stream.arrivals
    ttft = (arrivals[0] - stream.sent) * 1000 if arrivals else None
    spread = len(arrivals) > 1 and stream.tokens > 1
    tpot = (arrivals[-1] - arrivals[0]) * 1000 / (stream.tokens - 1) if spread else None
    return ProbeResult(engine, endpoint, ttft, tpot, stream.tokens, total, error)


def probe(
    endpoint: str, engine: str, max_tokens: int = 16, model: str | None = None, timeout_s: float = 30.0
) -> ProbeResult:
    """Stream `max_tokens` tokens and time them; errors are returned in the result, never raised."""
    endpoint = endpoint.rstrip("/")
    start = time.perf_counter()
    nothing = TokenStream(start, (), 0)
    try:
        engine_adapter = adapter(engine)
    except ValueError as error:
        return _result(engine, endpoint, nothing, str(error))
    try:
        return _result(engine, endpoint, engine_adapter.stream_tokens(endpoint, PROMPT, max_tokens, model, timeout_s))
    except Exception as error:  # report, do not crash the caller; by its kind only, never the answer's body
        return _result(engine, endpoint, nothing, safe_text(error))
