"""Decode-load model of one replica: Little's law over the plan's step time, KV-bounded batch, prefill stalls, queue."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from llmop.autoscale.capacity import CapacityModel as Physics

__all__ = ["Physics", "ReplicaState", "Workload", "replica_state", "replicas_needed", "weighted_quantile"]

DEFAULT_PROMPT_TOKENS = 1024
QUANTILE_POINTS = 24  # the batch-size distribution is carried as this many equal-probability points


@dataclass(frozen=True)
class Workload:
    """Offered load on one deployment: requests per second, mean output and prompt lengths."""

    rps: float
    output_tokens: float
    prompt_tokens: float = DEFAULT_PROMPT_TOKENS

    @property
    def context(self) -> float:
        """Mean KV-cache tokens a running sequence holds: its prompt plus half its output."""
        return self.prompt_tokens + self.output_tokens / 2


@dataclass(frozen=True)
class ReplicaState:
    """One replica for one tick: its batch-size distribution and what it serves."""

    running: float  # mean sequences in the batch
    saturated: bool
    service_rps: float  # requests per second it finishes (all it can when saturated)
    prefill_share: float  # share of GPU time spent on prompt tokens
    points: tuple[tuple[float, float], ...]  # (inter-token ms, token weight), weights sum to 1
    mean_itl_ms: float
    step_points: tuple[tuple[float, float], ...] = ()  # (step ms, share of decode steps)


def _poisson_points(mean: float, cap: int) -> tuple[tuple[int, float], ...]:
    return _poisson_points_cached(round(mean, 1 if mean < 20 else 0), cap)


@lru_cache(maxsize=4096)
def _poisson_points_cached(mean: float, cap: int) -> tuple[tuple[int, float], ...]:
    """Equal-probability points of Poisson(mean) truncated at cap (sequences in a batch, M/G/inf)."""
    if mean <= 0:
        return ((0, 1.0),)
    upper = int(mean + 8 * math.sqrt(mean) + 10)
    pmf = math.exp(-mean) if mean < 700 else 0.0
    log_pmf = -mean
    cdf = 0.0
    points: list[tuple[int, float]] = []
    target_index = 0
    step = 1.0 / QUANTILE_POINTS
    for k in range(upper + 1):
        if k > 0:
            log_pmf += math.log(mean) - math.log(k)
            pmf = math.exp(log_pmf)
        cdf += pmf
        while target_index < QUANTILE_POINTS and cdf >= (target_index + 0.5) * step:
            points.append((min(k, cap), step))
            target_index += 1
        if target_index >= QUANTILE_POINTS:
            break
    while target_index < QUANTILE_POINTS:
        points.append((min(upper, cap), step))
        target_index += 1
    merged: dict[int, float] = {}
    for batch, weight in points:
        merged[batch] = merged.get(batch, 0.0) + weight
    return tuple(sorted(merged.items()))


def replica_state(physics: Physics, work: Workload, rps_per_replica: float, queued: float) -> ReplicaState:
    """Steady state of one replica offered `rps_per_replica`, with `queued` requests already waiting.

    Chunked prefill spreads each prompt's compute over the decode steps, so every step is slowed by the
    prefill share of GPU time: ITL = step(batch) / (1 - prefill share). The batch is Poisson around the
    Little's-law mean (M/G/inf) and capped by the KV cache and max-num-seqs; past the cap requests queue.
    """
    context = work.context
    cap = physics.batch_limit(context)
    a = max(rps_per_replica, 0.0)
    tokens = max(work.output_tokens, 1.0)
    prefill_per_request = work.prompt_tokens * physics.prefill_ms_per_token / 1000.0  # GPU seconds
    per_seq = physics.per_seq_ms + context * physics.per_context_ms
    share = a * prefill_per_request
    denominator = 1000.0 * (1.0 - share) - a * tokens * per_seq
    fluid = a * tokens * physics.base_ms / denominator if share < 1 and denominator > 0 else math.inf
    saturated = queued > 1e-9 or fluid >= cap
    if saturated:
        running = float(cap)
        full = cap * 1000.0 / (physics.step_ms(cap, context) * tokens)  # requests/s without prefill
        service = full / (1.0 + full * prefill_per_request)
        share = service * prefill_per_request
        batches: tuple[tuple[int, float], ...] = ((cap, 1.0),)
    else:
        running = fluid
        service = a
        batches = _poisson_points(fluid, cap)
    slowdown = 1.0 / max(1.0 - share, 0.05)
    weighted = [
        (physics.step_ms(batch, context) * slowdown, probability * batch / physics.step_ms(batch, context))
        for batch, probability in batches
        if batch > 0
    ]
    total = sum(weight for _, weight in weighted)
    points = tuple((ms, weight / total) for ms, weight in weighted) if total > 0 else ()
    mean = sum(ms * weight for ms, weight in points) if points else physics.step_ms(1, context) * slowdown
    steps = [(physics.step_ms(b, context) * slowdown, p / physics.step_ms(b, context)) for b, p in batches if b > 0]
    step_total = sum(weight for _, weight in steps)
    step_points = tuple((ms, weight / step_total) for ms, weight in steps) if step_total > 0 else ()
    return ReplicaState(running, saturated, service, share, points, mean, step_points)


def weighted_quantile(points: list[tuple[float, float]] | tuple[tuple[float, float], ...], q: float) -> float | None:
    """The q-quantile (0..1) of (value, weight) points; None when they carry no weight."""
    ordered = sorted(point for point in points if point[1] > 0)
    total = sum(weight for _, weight in ordered)
    if total <= 0:
        return None
    rank = q * total
    running = 0.0
    for value, weight in ordered:
        running += weight
        if running >= rank - 1e-12:
            return value
    return ordered[-1][0]


def steady_quantile_ms(physics: Physics, work: Workload, replicas: int, q: float) -> float | None:
    """Steady-state q-quantile ITL with the load spread over `replicas`; inf when they cannot keep up."""
    if replicas <= 0:
        return math.inf if work.rps > 0 else None
    state = replica_state(physics, work, work.rps / replicas, 0.0)
    if state.saturated and state.service_rps < work.rps / replicas:
        return math.inf
    return weighted_quantile(state.points, q)


def replicas_needed(physics: Physics, work: Workload, target_ms: float, q: float, limit: int) -> int:
    """Fewest replicas (<= limit) whose steady-state q-quantile ITL meets `target_ms`; `limit` if none does."""
    if work.rps <= 0:
        return 0
    for replicas in range(1, limit + 1):
        value = steady_quantile_ms(physics, work, replicas, q)
        if value is not None and value <= target_ms:
            return replicas
    return limit
