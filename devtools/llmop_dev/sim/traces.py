"""Load traces: CSV `seconds,requests_per_second,mean_output_tokens` (piecewise constant) and generators."""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from pathlib import Path

HEADER = "seconds,requests_per_second,mean_output_tokens"


@dataclass(frozen=True)
class TracePoint:
    seconds: float
    rps: float
    output_tokens: float


@dataclass(frozen=True)
class Trace:
    """Offered load over time; each point holds until the next one, the last until `duration`."""

    points: tuple[TracePoint, ...]
    duration: float
    name: str = "trace"

    def __post_init__(self) -> None:
        if not self.points:
            raise ValueError("a trace needs at least one point")
        if any(b.seconds <= a.seconds for a, b in zip(self.points, self.points[1:], strict=False)):
            raise ValueError("trace seconds must increase")

    def at(self, seconds: float) -> TracePoint:
        index = bisect.bisect_right([p.seconds for p in self.points], seconds) - 1
        return self.points[max(index, 0)]

    def steps_up(self, ratio: float = 1.25) -> list[float]:
        """Times at which the offered tokens/s jump by at least `ratio` from the previous point."""
        steps: list[float] = []
        for before, after in zip(self.points, self.points[1:], strict=False):
            old = before.rps * before.output_tokens
            if after.rps * after.output_tokens >= max(old, 1e-9) * ratio and after.rps > 0:
                steps.append(after.seconds)
        return steps

    def to_csv(self) -> str:
        lines = [HEADER] + [f"{p.seconds:g},{p.rps:.4g},{p.output_tokens:.4g}" for p in self.points]
        lines.append(f"{self.duration:g},{self.points[-1].rps:.4g},{self.points[-1].output_tokens:.4g}")
        return "\n".join(lines) + "\n"


class TraceError(ValueError):
    """A trace file that cannot be read."""


def parse_csv(text: str, name: str = "trace") -> Trace:
    """Parse a trace; the last row's time is the end of the trace."""
    points: list[TracePoint] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.replace(" ", "") == HEADER:
            continue
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 3:
            raise TraceError(f"{name}:{number}: expected {HEADER}, got {raw!r}")
        try:
            seconds, rps, tokens = (float(part) for part in parts)
        except ValueError:
            raise TraceError(f"{name}:{number}: not numbers: {raw!r}") from None
        if seconds < 0 or rps < 0 or tokens <= 0 or not all(math.isfinite(v) for v in (seconds, rps, tokens)):
            raise TraceError(f"{name}:{number}: seconds and rps must be >= 0 and tokens > 0: {raw!r}")
        if points and seconds <= points[-1].seconds:
            raise TraceError(f"{name}:{number}: seconds must increase")
        points.append(TracePoint(seconds, rps, tokens))
    if not points:
        raise TraceError(f"{name}: no rows")
    duration = points[-1].seconds if len(points) > 1 else 3600.0
    if len(points) > 1:
        points.pop()
    return Trace(tuple(points), duration, name)


def load(path: str | Path) -> Trace:
    file = Path(path)
    try:
        return parse_csv(file.read_text(encoding="utf-8"), file.stem)
    except OSError as error:
        raise TraceError(f"{file}: cannot read: {error.strerror or error}") from None


def constant(rps: float, output_tokens: float, duration: float = 3600.0, name: str = "constant") -> Trace:
    return Trace((TracePoint(0.0, rps, output_tokens),), duration, name)


def steady(rps: float = 30.0, output_tokens: float = 256.0, duration: float = 3600.0) -> Trace:
    return constant(rps, output_tokens, duration, "steady")


def step(low: float = 10.0, high: float = 60.0, at: float = 900.0, back: float = 2700.0,
         output_tokens: float = 256.0, duration: float = 3600.0) -> Trace:  # fmt: skip
    """Low load, a step up at `at`, back down at `back`."""
    points = (TracePoint(0.0, low, output_tokens), TracePoint(at, high, output_tokens))
    if back < duration:
        points += (TracePoint(back, low, output_tokens),)
    return Trace(points, duration, "step")


def diurnal(low: float = 8.0, high: float = 100.0, period: float = 7200.0, resolution: float = 60.0,
            output_tokens: float = 256.0, duration: float = 7200.0) -> Trace:  # fmt: skip
    """A day compressed into `period`: a smooth cosine between `low` (start) and `high` (mid-period)."""
    points = []
    for index in range(int(duration // resolution)):
        t = index * resolution
        share = 0.5 - 0.5 * math.cos(2 * math.pi * t / period)
        points.append(TracePoint(t, low + (high - low) * share, output_tokens))
    return Trace(tuple(points), duration, "diurnal")


def bursty(base: float = 20.0, burst: float = 3.0, bursts: int = 6, burst_seconds: float = 240.0,
           output_tokens: float = 256.0, duration: float = 3600.0, seed: int = 7) -> Trace:  # fmt: skip
    """Steady base load with `bursts` bursts of `burst` x base at seeded random times; output length varies too."""
    rng = random.Random(seed)
    starts = sorted(rng.uniform(300.0, duration - burst_seconds - 300.0) for _ in range(bursts))
    points: list[TracePoint] = [TracePoint(0.0, base, output_tokens)]
    for start in starts:
        if start <= points[-1].seconds:
            continue
        tokens = output_tokens * rng.choice((0.5, 1.0, 1.5))
        points.append(TracePoint(start, base * burst * rng.uniform(0.7, 1.0), tokens))
        points.append(TracePoint(start + burst_seconds * rng.uniform(0.5, 1.0), base, output_tokens))
    return Trace(tuple(points), duration, "bursty")


GENERATORS = {"steady": steady, "step": step, "diurnal": diurnal, "bursty": bursty}
