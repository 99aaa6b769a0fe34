"""Scoring a replay the way a user would: SLO-minutes (TPOT and TTFT), queue-minutes, timeouts, GPU-hours."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

# The default TTFT bound when the spec states none: MLPerf Inference's interactive server scenario for
# Llama-2-70B bounds the 99th-percentile time to first token at 2 s; we judge the 95th against the same 2 s.
DEFAULT_TTFT_BOUND_S = 2.0
QUEUE_MINUTE_WAITING = 1.0  # a minute whose mean waiting requests (router and engines) reach this is a queue-minute


def weighted_quantile(points: Iterable[tuple[float, float]], q: float) -> float | None:
    """The q-quantile (0..1) of (value, weight) points, the lowest value whose cumulative weight reaches q."""
    ordered = sorted(point for point in points if point[1] > 0)
    total = sum(weight for _, weight in ordered)
    if total <= 0:
        return None
    rank = q * total
    running = 0.0
    for value, weight in ordered:
        running += weight
        if running >= rank - 1e-9 * total:
            return value
    return ordered[-1][0]


def quantile(values: list[float], q: float) -> float | None:
    """Nearest-rank q-quantile of plain values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


@dataclass(frozen=True)
class Minute:
    """One scored minute: its token-weighted TPOT percentile, p95 TTFT, queue and timeouts, and the verdict."""

    index: int
    tpot_s: float | None
    ttft_p95_s: float | None
    mean_waiting: float
    timeouts: int
    met: bool

    @property
    def queued(self) -> bool:
        return self.mean_waiting >= QUEUE_MINUTE_WAITING


def judge_minute(
    index: int,
    itl_points: Iterable[tuple[float, float]],
    ttfts: list[float],
    mean_waiting: float,
    timeouts: int,
    target_s: float,
    percentile: float,
    ttft_bound_s: float,
) -> Minute:
    """A minute is met when its tokens' p-th percentile inter-token latency is within the target, its p95 TTFT
    within the bound, and no request timed out in it. A minute without tokens or first tokens is judged on the
    rest (an idle minute is met)."""
    tpot = weighted_quantile(itl_points, percentile / 100.0)
    ttft = quantile(ttfts, 0.95)
    met = (tpot is None or tpot <= target_s) and (ttft is None or ttft <= ttft_bound_s) and timeouts == 0
    return Minute(index, tpot, ttft, mean_waiting, timeouts, met)


@dataclass(frozen=True)
class Score:
    """A whole replay's figures (the keys of `llmop simulate --json`)."""

    slo_minutes_pct: float
    gpu_hours: float
    queue_minutes_pct: float
    timeouts: int
    ttft_p95_s: float | None
    minutes: int
    rejected: int = 0  # refused by the engine as longer than the model's context: reported, never judged


def summarize(minutes: list[Minute], all_ttfts: list[float], gpu_seconds: float, rejected: int = 0) -> Score:
    count = max(len(minutes), 1)
    return Score(
        slo_minutes_pct=100.0 * sum(m.met for m in minutes) / count,
        gpu_hours=gpu_seconds / 3600.0,
        queue_minutes_pct=100.0 * sum(m.queued for m in minutes) / count,
        timeouts=sum(m.timeouts for m in minutes),
        ttft_p95_s=quantile(all_ttfts, 0.95),
        minutes=len(minutes),
        rejected=rejected,
    )
