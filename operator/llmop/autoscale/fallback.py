"""Active-probe fallback: when the SLO window holds too few tokens to judge, time a short generation instead."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from llmop.autoscale.metrics import Observation
from llmop.autoscale.outbound import OutboundPolicy
from llmop.autoscale.probe import ProbeResult, probe

Prober = Callable[[str, str], ProbeResult]  # (endpoint, engine) -> result; never raises


def service_endpoint(name: str, namespace: str, port: int) -> str:
    """The engine's Service as the renderer names it, through cluster DNS."""
    return f"http://{name}.{namespace}.svc:{port}"


def refused(endpoint: str, engine: str, why: str) -> ProbeResult:
    """The result of a probe the operator's settings do not allow: nothing was sent."""
    return ProbeResult(engine, endpoint, None, None, 0, 0.0, why)


def probe_target(custom: str | None, own_service: str, policy: OutboundPolicy) -> tuple[str, str | None]:
    """(endpoint to probe, why it may not be probed or None): the spec's endpoint if set, else the Service."""
    endpoint = (custom or own_service).rstrip("/")
    return endpoint, policy.probe_refusal(endpoint, own_service)


def needs_probe(obs: Observation, min_samples: float) -> bool:
    """Prometheus answered (anything else stays fail-static) but the window holds too few tokens to judge."""
    if obs.error is not None or obs.running is None or obs.waiting is None:
        return False
    return obs.latency_ms is None or obs.samples < min_samples


def with_probe(obs: Observation, result: ProbeResult, min_samples: float) -> Observation:
    """The observation with the probe's mean TPOT as its latency; a failed probe makes it an error (hold)."""
    few = f"{obs.samples:.0f} tokens in the window < {min_samples:.0f}"
    if result.error is not None or result.tpot_ms is None:
        why = result.error or f"{result.tokens} token(s) streamed, too few to time"
        return replace(obs, error=f"{few} and the active probe of {result.endpoint} failed: {why}", source="probe")
    ttft = "" if result.ttft_ms is None else f", TTFT {result.ttft_ms:.0f} ms"
    how = f"an active probe of {result.endpoint} ({result.tokens} tokens{ttft})"
    note = f"{few}: TPOT {result.tpot_ms:.1f} ms from {how}"
    return replace(
        obs, latency_ms=result.tpot_ms, below_resolution=False, ttft_ms=result.ttft_ms, source="probe", note=note
    )


@dataclass
class ProbeCache:
    """The last probe of each endpoint, reused for `interval_s` so a tick does not stream tokens every time."""

    prober: Prober | None = None
    clock: Callable[[], float] = time.monotonic
    timeout_s: float = 10.0
    max_tokens: int = 16

    def __post_init__(self) -> None:
        self._last: dict[tuple[str, str], tuple[float, ProbeResult]] = {}

    def get(self, endpoint: str, engine: str, interval_s: float) -> ProbeResult:
        key = (endpoint, engine)
        now = self.clock()
        cached = self._last.get(key)
        if cached is not None and 0 <= now - cached[0] < interval_s:
            return cached[1]
        if self.prober is not None:
            result = self.prober(endpoint, engine)
        else:
            result = probe(endpoint, engine, max_tokens=self.max_tokens, timeout_s=self.timeout_s)
        if len(self._last) >= 4096:  # deleted deployments, changed endpoints: start over rather than grow
            self._last.clear()
        self._last[key] = (now, result)
        return result
