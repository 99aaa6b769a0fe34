"""The true sustainable arrival rate of one replica under an ITL target, found by running the replay's own physics."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from functools import lru_cache
from statistics import NormalDist

from llmop_dev.replay.engine import BINS_PER_S, EnginePod
from llmop_dev.replay.fleet import quantile
from llmop_dev.replay.hardware import Hardware
from llmop_dev.replay.types import Request

LengthSampler = Callable[[random.Random], tuple[int, int]]  # rng -> (prompt tokens, output tokens)

WARMUP_S = 120.0
MEASURE_S = 600.0
CHUNK_S = 1.0  # the engine is run and watched in steps of this much
# Default lengths, the same forms traces.py draws for rate traces (at the time of writing): prompts lognormal with
# log-sd PROMPT_SIGMA clipped at PROMPT_CAP x mean (log-mean solved so the clipped mean is the mean), outputs
# geometric on {1, 2, ...} with the mean.
PROMPT_SIGMA = 1.0
PROMPT_CAP = 8.0
_NORMAL = NormalDist()


class _Quiet:
    """A PodMetrics that records nothing."""

    def observe_itl(self, value_s: float, count: float) -> None: ...

    def observe_ttft(self, value_s: float) -> None: ...

    def observe_step(self, kind: str, duration_s: float, batch: int, count: int = 1) -> None: ...

    def observe_finished(
        self, prompt_tokens: int, output_tokens: int, e2e_s: float, queue_s: float, ttft_s: float | None = None
    ) -> None: ...

    def set_state(self, running: int, waiting: int, kv_usage: float) -> None: ...

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        return []


class _Tally:
    """A Ledger keeping the ITL bins after the warm-up."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.bins: dict[int, float] = {}
        self.ttfts: list[float] = []

    def itl(self, t: float, value_s: float, tokens: float) -> None:
        if t >= self.start:
            key = round(value_s * BINS_PER_S)
            self.bins[key] = self.bins.get(key, 0.0) + tokens

    def ttft(self, t: float, value_s: float) -> None:
        if t >= self.start:
            self.ttfts.append(value_s)

    def timed_out(self, t: float, count: int = 1) -> None: ...

    def rejected(self, t: float) -> None: ...

    def finished(self, t: float) -> None: ...


def default_lengths(prompt_tokens: float, output_tokens: float) -> LengthSampler:
    """Lognormal prompts (clipped, mean `prompt_tokens`) and geometric outputs (mean `output_tokens`)."""
    sigma, cap = PROMPT_SIGMA, PROMPT_CAP * prompt_tokens
    mu = math.log(prompt_tokens) - sigma**2 / 2
    for _ in range(50):  # the log-mean whose clipped lognormal averages prompt_tokens
        clipped = math.exp(mu + sigma**2 / 2) * _NORMAL.cdf((math.log(cap) - mu - sigma**2) / sigma)
        clipped += cap * (1.0 - _NORMAL.cdf((math.log(cap) - mu) / sigma))
        mu += math.log(prompt_tokens / clipped)
    stop = math.log(1.0 - 1.0 / output_tokens) if output_tokens > 1 else 0.0

    def sample(rng: random.Random) -> tuple[int, int]:
        prompt = max(1, round(min(math.exp(rng.gauss(mu, sigma)), cap)))
        output = 1 + int(math.log(1.0 - rng.random()) / stop) if stop else 1
        return prompt, output

    return sample


def steady_run(
    hardware: Hardware, rate: float, percentile: float, sample: LengthSampler, seed: int = 0
) -> tuple[float, bool]:
    """One pod under Poisson arrivals at `rate`: (token-weighted ITL percentile after warm-up, queue stable)."""
    itl, _, stable = steady_run_ttft(hardware, rate, percentile, sample, seed)
    return itl, stable


def steady_run_ttft(
    hardware: Hardware, rate: float, percentile: float, sample: LengthSampler, seed: int = 0
) -> tuple[float, float, bool]:
    """As `steady_run`, plus the p95 time to first token after warm-up (inf when overloaded)."""
    rng = random.Random(f"{seed}:truth")
    tally = _Tally(WARMUP_S)
    pod = EnginePod(hardware, _Quiet(), seed=seed, ledger=tally, timeout_s=300.0)
    end = WARMUP_S + MEASURE_S
    t = rng.expovariate(1.0) / rate
    waiting: list[int] = []
    clock = 0.0
    while clock < end:
        clock += CHUNK_S
        while t < clock:
            prompt, output = sample(rng)
            pod.submit(Request(t, prompt, output))
            t += rng.expovariate(1.0) / rate
        pod.advance(clock)
        pod.publish(clock - CHUNK_S)
        if clock > WARMUP_S:
            waiting.append(pod.num_waiting)
        if pod.timed_out or pod.num_waiting > max(50.0, rate * 60):
            return math.inf, math.inf, False  # overloaded: the queue is running away
    half = len(waiting) // 2
    early, late = sum(waiting[:half]) / half, sum(waiting[half:]) / (len(waiting) - half)
    stable = late <= 1.5 * early + 2.0
    points = [(key / BINS_PER_S, tokens) for key, tokens in sorted(tally.bins.items())]
    ttfts = sorted(tally.ttfts)
    ttft_p95 = ttfts[max(math.ceil(0.95 * len(ttfts)) - 1, 0)] if ttfts else 0.0
    return quantile(points, percentile), ttft_p95, stable


@lru_cache(maxsize=256)
def capacity_rps(
    hardware: Hardware,
    prompt_tokens: float,
    output_tokens: float,
    target_ms: float,
    percentile: float,
    seed: int = 0,
    sample_lengths: LengthSampler | None = None,
    ttft_bound_s: float | None = None,
) -> float:
    """Highest Poisson arrival rate (requests/s) one replica sustains with the token-weighted `percentile` ITL
    (95 or 0.95) over a steady run (120 s warm-up, 600 s measured) at or under `target_ms`, the p95 time to first
    token within `ttft_bound_s` (when given), no timeouts and a queue that does not grow. Bracket by doubling from
    0.25 rps, then bisect to 2%. 0.0 when even 0.25 rps fails."""
    q = percentile / 100 if percentile > 1 else percentile
    sample = sample_lengths or default_lengths(prompt_tokens, output_tokens)

    def ok(rate: float) -> bool:
        value, ttft, stable = steady_run_ttft(hardware, rate, q, sample, seed)
        return stable and value * 1e3 <= target_ms and (ttft_bound_s is None or ttft <= ttft_bound_s)

    lo, hi = 0.0, 0.25
    while ok(hi):
        lo, hi = hi, hi * 2
        if hi > 1e4:
            return lo
    if lo == 0.0:
        return 0.0
    while hi / lo > 1.02:
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo
