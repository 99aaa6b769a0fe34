"""Real-time load sources for the simulator: seeded Poisson arrivals at a settable rate, or a trace file looping."""

from __future__ import annotations

import math
import random
from typing import Protocol

from llmop_dev.replay.traces import RateWorkload, RequestWorkload
from llmop_dev.replay.types import Request

DEFAULT_PROMPT_TOKENS = 1024


def geometric(mean: float, u: float) -> int:
    """A length on {1, 2, ...} with this mean (a constant per-token stop probability), by inversion of `u`."""
    if mean <= 1.0:
        return 1
    return 1 + int(math.log(1.0 - u) / math.log(1.0 - 1.0 / mean))


class LoadSource(Protocol):
    """Requests arriving in wall-clock time; `rps`/`output_tokens`/`prompt_tokens` describe the load now."""

    def arrivals(self, start: float, end: float) -> list[Request]: ...

    def rps(self, now: float) -> float: ...

    def output_tokens(self, now: float) -> float: ...

    def prompt_tokens(self, now: float) -> float: ...


class RateSource:
    """Poisson arrivals at `rate` requests/s from a seeded stream; output lengths geometric with mean
    `mean_output`, prompts of `mean_prompt` tokens. `set` changes the rate from the next arrival on."""

    def __init__(self, rate: float, mean_output: float = 256.0, mean_prompt: float = DEFAULT_PROMPT_TOKENS,
                 seed: int | str = 0) -> None:  # fmt: skip
        self.rng = random.Random(f"{seed}:sim-arrivals")
        self.rate = max(rate, 0.0)
        self.mean_output = max(mean_output, 1.0)
        self.mean_prompt = max(mean_prompt, 1.0)
        self._next: float | None = None

    def set(self, rate: float, mean_output: float | None = None, mean_prompt: float | None = None) -> None:
        self.rate = max(rate, 0.0)
        if mean_output is not None:
            self.mean_output = max(mean_output, 1.0)
        if mean_prompt is not None:
            self.mean_prompt = max(mean_prompt, 1.0)
        self._next = None  # memoryless: redraw the next gap from the next call's start

    def arrivals(self, start: float, end: float) -> list[Request]:
        if self.rate <= 0:
            self._next = None
            return []
        if self._next is None or self._next < start - 1.0:
            self._next = start + self.rng.expovariate(self.rate)
        out: list[Request] = []
        while self._next < end:
            output = geometric(self.mean_output, self.rng.random())
            out.append(Request(self._next, round(self.mean_prompt), output))
            self._next += self.rng.expovariate(self.rate)
        return out

    def rps(self, now: float) -> float:
        return self.rate

    def output_tokens(self, now: float) -> float:
        return self.mean_output

    def prompt_tokens(self, now: float) -> float:
        return self.mean_prompt


class TraceSource:
    """A trace's requests (replay.traces.load_workload) replayed in real time from `started`, looping."""

    def __init__(self, workload: RateWorkload | RequestWorkload, started: float) -> None:
        if workload.duration_s <= 0:
            raise ValueError(f"trace {workload.name} has no duration")
        self.workload = workload
        self.started = started
        self._loop = 0
        self._index = 0

    def arrivals(self, start: float, end: float) -> list[Request]:
        requests, duration = self.workload.requests, self.workload.duration_s
        out: list[Request] = []
        while True:
            offset = self.started + self._loop * duration
            if offset >= end:
                return out
            while self._index < len(requests) and offset + requests[self._index].arrival_s < end:
                request = requests[self._index]
                self._index += 1
                at = offset + request.arrival_s
                if at >= start:
                    out.append(Request(at, request.prompt_tokens, request.output_tokens))
            if self._index < len(requests) or offset + duration >= end:
                return out
            self._loop += 1
            self._index = 0

    def _t(self, now: float) -> float:
        return (now - self.started) % self.workload.duration_s

    def rps(self, now: float) -> float:
        return self.workload.intensity(self._t(now))

    def output_tokens(self, now: float) -> float:
        return self.workload.mean_output_tokens(self._t(now))

    def prompt_tokens(self, now: float) -> float:
        return self.workload.mean_prompt_tokens(self._t(now))
