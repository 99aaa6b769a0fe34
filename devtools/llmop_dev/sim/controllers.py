"""Scaling controllers replayed by the simulator: llmop's policy, HPA and KEDA algorithms, and two oracles."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from llmop.autoscale.metrics import Observation
from llmop.autoscale.policy import PolicyConfig, PolicyState, decide
from llmop_dev.sim.model import Physics, Workload, replicas_needed
from llmop_dev.sim.traces import Trace


@dataclass(frozen=True)
class View:
    """What a controller may look at on a tick (oracles also read the trace)."""

    now: float
    current: int
    ready: int
    observation: Observation
    backlog: float = 0.0  # requests queued right now (exact; only the oracles read it)


class Controller(Protocol):
    name: str
    interval_s: float

    def desired(self, view: View) -> int: ...


@dataclass(frozen=True)
class Target:
    """The SLO and replica bounds every controller works to."""

    target_ms: float
    percentile: float
    min_replicas: int
    max_replicas: int

    def clamp(self, replicas: int) -> int:
        return max(self.min_replicas, min(self.max_replicas, replicas))


class LlmopController:
    """llmop's own policy, ticking like the operator's timer."""

    name = "llmop"

    def __init__(self, config: PolicyConfig, interval_s: float = 15.0) -> None:
        self.config = config
        self.interval_s = interval_s
        self.state = PolicyState()
        self.reasons: list[tuple[float, str]] = []

    def desired(self, view: View) -> int:
        decision = decide(self.config, self.state, view.observation, view.current, view.ready, view.now)
        self.state = decision.state
        if decision.direction != "hold":
            self.reasons.append((view.now, decision.reason))
        return decision.desired


class HpaController:
    """The HPA algorithm on one Value-type metric: 15 s sync, 10 % tolerance, default behaviours.

    Scale-up: no stabilization, at most max(100 %, 4 pods) per 15 s. Scale-down: the highest recommendation of
    the last 300 s, 100 % per 15 s. Missing metric: no change. `ceil(ratio * ready pods)` as replica_calculator.
    """

    name = "hpa"

    def __init__(self, target: Target, interval_s: float = 15.0, tolerance: float = 0.1, down_window_s: float = 300.0):
        self.target = target
        self.interval_s = interval_s
        self.tolerance = tolerance
        self.down_window_s = down_window_s
        self.recommendations: deque[tuple[float, int]] = deque()

    def metric(self, view: View) -> tuple[float, float] | None:
        """(usage, target) for this tick; None when the metric is unavailable."""
        obs = view.observation
        if obs.error is not None or obs.latency_ms is None:
            return None
        return obs.latency_ms, self.target.target_ms

    def recommend(self, usage: float, target: float, view: View) -> int:
        ratio = usage / target
        if abs(ratio - 1.0) <= self.tolerance:
            return view.current
        return math.ceil(ratio * max(view.ready, 1))

    def desired(self, view: View) -> int:
        metric = self.metric(view)
        if metric is None or view.current == 0:
            return view.current
        recommendation = self.recommend(metric[0], metric[1], view)
        self.recommendations.append((view.now, recommendation))
        while self.recommendations and self.recommendations[0][0] < view.now - self.down_window_s:
            self.recommendations.popleft()
        up = recommendation  # scale-up stabilization 0 s
        down = max(value for _, value in self.recommendations)
        desired = view.current
        if up > view.current:
            desired = min(up, max(view.current * 2, view.current + 4))
        elif down < view.current:
            desired = down
        return self.target.clamp(desired)


class KedaController(HpaController):
    """KEDA's Prometheus scaler on waiting requests (AverageValue threshold per replica), polled every 30 s,
    feeding the HPA it creates (15 s sync, 300 s cooldown before scaling down)."""

    name = "keda"

    def __init__(self, target: Target, threshold: float = 5.0, poll_s: float = 30.0, cooldown_s: float = 300.0):
        super().__init__(target, interval_s=15.0, down_window_s=cooldown_s)
        self.threshold = threshold
        self.poll_s = poll_s
        self._polled_at = -math.inf
        self._value: float | None = None

    def metric(self, view: View) -> tuple[float, float] | None:
        if view.now - self._polled_at >= self.poll_s:
            self._polled_at = view.now
            obs = view.observation
            self._value = None if obs.error is not None or obs.waiting is None else obs.waiting
        return None if self._value is None else (self._value, self.threshold)

    def recommend(self, usage: float, target: float, view: View) -> int:
        ratio = usage / (target * max(view.current, 1))
        if abs(ratio - 1.0) <= self.tolerance:
            return view.current
        return math.ceil(usage / target)


class ReactiveOracle:
    """Each tick, the fewest replicas that meet the SLO for the load of this instant (perfect measurement)."""

    name = "reactive-oracle"

    def __init__(self, target: Target, physics: Physics, trace: Trace, prompt_tokens: float, interval_s: float = 5.0):
        self.target = target
        self.physics = physics
        self.trace = trace
        self.prompt_tokens = prompt_tokens
        self.interval_s = interval_s

    def need(self, seconds: float, backlog: float = 0.0, drain_s: float = 120.0) -> int:
        """Fewest replicas for the load at `seconds`, plus a backlog to drain within `drain_s`."""
        point = self.trace.at(seconds)
        work = Workload(point.rps + backlog / drain_s, point.output_tokens, self.prompt_tokens)
        needed = replicas_needed(self.physics, work, self.target.target_ms, self.target.percentile / 100, 1000)
        return self.target.clamp(needed)

    def desired(self, view: View) -> int:
        return self.need(view.now, view.backlog)


class ClairvoyantOracle(ReactiveOracle):
    """Knows the future: keeps what is needed until new replicas could be ready, starting them a delay ahead."""

    name = "oracle"

    def __init__(self, target: Target, physics: Physics, trace: Trace, prompt_tokens: float, startup_s: float,
                 interval_s: float = 5.0) -> None:  # fmt: skip
        super().__init__(target, physics, trace, prompt_tokens, interval_s)
        self.startup_s = startup_s

    def desired(self, view: View) -> int:
        horizon = view.now + self.startup_s + 2 * self.interval_s
        times = [view.now] + [p.seconds for p in self.trace.points if view.now < p.seconds <= horizon]
        return max(self.need(t, view.backlog if t == view.now else 0.0) for t in times)
