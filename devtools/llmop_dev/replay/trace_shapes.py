"""Rate-trace shapes: seeded, deterministic generators of piecewise-constant `seconds,requests_per_second,...` CSVs."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RATE_HEADER = "seconds,requests_per_second,mean_output_tokens"


@dataclass(frozen=True)
class RatePoint:
    """From `seconds` on (until the next point), requests arrive at `rps` with `output_tokens` mean output length."""

    seconds: float
    rps: float
    output_tokens: float


@dataclass(frozen=True)
class RateTrace:
    """Offered load over [0, duration]: each point holds until the next one, the last until `duration`."""

    points: tuple[RatePoint, ...]
    duration: float
    name: str = "trace"

    def __post_init__(self) -> None:
        if not self.points or self.points[0].seconds != 0.0:
            raise ValueError(f"{self.name}: a rate trace needs points, the first at 0 s")
        if any(b.seconds <= a.seconds for a, b in zip(self.points, self.points[1:], strict=False)):
            raise ValueError(f"{self.name}: point times must increase")
        if self.duration <= self.points[-1].seconds:
            raise ValueError(f"{self.name}: duration must be after the last point")
        if any(p.rps < 0 or p.output_tokens <= 0 for p in self.points):
            raise ValueError(f"{self.name}: rates must be >= 0 and output tokens > 0")

    def to_csv(self) -> str:
        """The CSV the loader reads: one row per point, then a row at `duration` (its values repeat the last)."""
        lines = [RATE_HEADER] + [f"{p.seconds:g},{p.rps:.4g},{p.output_tokens:.4g}" for p in self.points]
        lines.append(f"{self.duration:g},{self.points[-1].rps:.4g},{self.points[-1].output_tokens:.4g}")
        return "\n".join(lines) + "\n"


def _sampled(name: str, rate: Callable[[float], float], duration: float, resolution: float,
             output_tokens: float) -> RateTrace:  # fmt: skip
    """A smooth shape as one point per `resolution` seconds, each holding the shape's value at its start."""
    count = int(duration // resolution)
    points = tuple(RatePoint(i * resolution, rate(i * resolution), output_tokens) for i in range(count))
    return RateTrace(points, duration, name)


def steady(rps: float = 30.0, output_tokens: float = 256.0, duration: float = 3600.0) -> RateTrace:
    """A constant rate."""
    return RateTrace((RatePoint(0.0, rps, output_tokens),), duration, "steady")


def step(low: float = 10.0, high: float = 60.0, at: float = 900.0, back: float = 2700.0,
         output_tokens: float = 256.0, duration: float = 3600.0) -> RateTrace:  # fmt: skip
    """Low load, a step up at `at`, back down at `back`."""
    points = (RatePoint(0.0, low, output_tokens), RatePoint(at, high, output_tokens))
    if back < duration:
        points += (RatePoint(back, low, output_tokens),)
    return RateTrace(points, duration, "step")


def diurnal(low: float = 8.0, high: float = 100.0, period: float = 7200.0, resolution: float = 60.0,
            output_tokens: float = 256.0, duration: float = 7200.0) -> RateTrace:  # fmt: skip
    """A day compressed into `period`: a smooth cosine between `low` (start) and `high` (mid-period)."""

    def rate(t: float) -> float:
        return low + (high - low) * (0.5 - 0.5 * math.cos(2 * math.pi * t / period))

    return _sampled("diurnal", rate, duration, resolution, output_tokens)


def bursty(base: float = 20.0, burst: float = 3.0, bursts: int = 6, burst_seconds: float = 240.0,
           output_tokens: float = 256.0, duration: float = 3600.0, seed: int = 7) -> RateTrace:  # fmt: skip
    """Steady base load with `bursts` bursts of `burst` x base at seeded random times; output length varies too."""
    rng = random.Random(seed)
    starts = sorted(rng.uniform(300.0, duration - burst_seconds - 300.0) for _ in range(bursts))
    points: list[RatePoint] = [RatePoint(0.0, base, output_tokens)]
    for start in starts:
        if start <= points[-1].seconds:
            continue
        tokens = output_tokens * rng.choice((0.5, 1.0, 1.5))
        points.append(RatePoint(start, base * burst * rng.uniform(0.7, 1.0), tokens))
        points.append(RatePoint(start + burst_seconds * rng.uniform(0.5, 1.0), base, output_tokens))
    return RateTrace(tuple(points), duration, "bursty")


def ramp(low: float = 10.0, high: float = 100.0, start: float = 600.0, ramp_seconds: float = 2400.0,
         resolution: float = 60.0, output_tokens: float = 256.0, duration: float = 3600.0) -> RateTrace:  # fmt: skip
    """`low` until `start`, a linear climb to `high` over `ramp_seconds`, then `high` to the end."""

    def rate(t: float) -> float:
        return low + (high - low) * min(max((t - start) / ramp_seconds, 0.0), 1.0)

    return _sampled("ramp", rate, duration, resolution, output_tokens)


def sawtooth(low: float = 15.0, high: float = 90.0, period: float = 1200.0, resolution: float = 60.0,
             output_tokens: float = 256.0, duration: float = 3600.0) -> RateTrace:  # fmt: skip
    """Teeth of `period` s: a linear climb from `low` to `high`, then a sudden fall back to `low`."""

    def rate(t: float) -> float:
        return low + (high - low) * ((t % period) / (period - resolution))

    return _sampled("sawtooth", rate, duration, resolution, output_tokens)


def spikes(base: float = 25.0, peak: float = 4.0, count: int = 8, shortest: float = 30.0, longest: float = 90.0,
           output_tokens: float = 256.0, duration: float = 3600.0, seed: int = 11) -> RateTrace:  # fmt: skip
    """Steady `base` with `count` short spikes of `peak` x base lasting `shortest`..`longest` s at seeded times.

    Each spike starts in its own slot of the trace (after a 300 s quiet start), so spikes never overlap.
    """
    rng = random.Random(seed)
    slot = (duration - 300.0) / count
    points: list[RatePoint] = [RatePoint(0.0, base, output_tokens)]
    for index in range(count):
        length = rng.uniform(shortest, longest)
        start = 300.0 + index * slot + rng.uniform(0.0, slot - length - 60.0)
        points.append(RatePoint(round(start, 1), base * peak, output_tokens))
        points.append(RatePoint(round(start + length, 1), base, output_tokens))
    return RateTrace(tuple(points), duration, "spikes")


def plateau_drop(warm: float = 15.0, warm_seconds: float = 300.0, high: float = 80.0, drop_at: float = 2400.0,
                 low: float = 10.0, output_tokens: float = 256.0, duration: float = 3600.0) -> RateTrace:  # fmt: skip
    """A short `warm` start, a long plateau at `high`, then a sudden drop to `low` at `drop_at` (tests scale-down)."""
    points = (RatePoint(0.0, warm, output_tokens), RatePoint(warm_seconds, high, output_tokens),
              RatePoint(drop_at, low, output_tokens))  # fmt: skip
    return RateTrace(points, duration, "plateau-drop")


def doubling(start: float = 5.0, every: float = 600.0, cap: float = 120.0, output_tokens: float = 256.0,
             duration: float = 3600.0) -> RateTrace:  # fmt: skip
    """The rate doubles every `every` seconds, from `start` up to `cap`, then holds."""
    points: list[RatePoint] = []
    rate, t = start, 0.0
    while t < duration:
        points.append(RatePoint(t, min(rate, cap), output_tokens))
        if rate >= cap:
            break
        rate, t = rate * 2.0, t + every
    return RateTrace(tuple(points), duration, "doubling")


def random_walk(start: float = 40.0, low: float = 10.0, high: float = 110.0, volatility: float = 0.12,
                resolution: float = 60.0, output_tokens: float = 256.0, duration: float = 7200.0,
                seed: int = 13) -> RateTrace:  # fmt: skip
    """A seeded geometric random walk: each `resolution` s the log rate moves by N(0, volatility), reflected
    into [log low, log high]."""
    rng = random.Random(seed)
    bottom, top = math.log(low), math.log(high)
    level = math.log(start)
    points: list[RatePoint] = []
    for index in range(int(duration // resolution)):
        points.append(RatePoint(index * resolution, round(math.exp(level), 2), output_tokens))
        level += rng.gauss(0.0, volatility)
        level = bottom + abs(level - bottom)
        level = top - abs(top - level)
    return RateTrace(tuple(points), duration, "random-walk")


GENERATORS: dict[str, Callable[..., RateTrace]] = {
    "steady": steady,
    "step": step,
    "diurnal": diurnal,
    "bursty": bursty,
    "ramp": ramp,
    "sawtooth": sawtooth,
    "spikes": spikes,
    "plateau-drop": plateau_drop,
    "doubling": doubling,
    "random-walk": random_walk,
}

# The files under bench/traces/: generator name -> the parameters it is called with (the rest are its defaults).
BENCH_TRACES: dict[str, dict[str, Any]] = {
    "steady": {"rps": 40.0},
    "step": {"low": 20.0, "high": 90.0},
    "diurnal": {"low": 10.0, "high": 110.0},
    "bursty": {"base": 25.0, "burst": 3.0},
    "ramp": {},
    "sawtooth": {},
    "spikes": {},
    "plateau-drop": {},
    "doubling": {},
    "random-walk": {},
}


def bench_trace(name: str) -> RateTrace:
    """One of the bench's generated traces, as BENCH_TRACES parameterises it."""
    return GENERATORS[name](**BENCH_TRACES[name])


def write_traces(directory: str | Path, names: tuple[str, ...] | None = None) -> list[Path]:
    """Write `<name>.csv` for each bench trace (all by default) into `directory`; returns the paths written."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in names or tuple(BENCH_TRACES):
        path = folder / f"{name}.csv"
        path.write_text(bench_trace(name).to_csv(), encoding="utf-8")
        written.append(path)
    return written
