"""Fast-forward a trace through a controller on the simulated fleet, observed through an emulated Prometheus."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from llmop.api.spec import duration_seconds
from llmop.autoscale.metrics import Observation, resolve_quantile
from llmop.autoscale.policy import PolicyConfig
from llmop.plan.parse import Resource
from llmop.plan.types import Plan
from llmop_dev.sim.controllers import (
    ClairvoyantOracle,
    Controller,
    HpaController,
    KedaController,
    LlmopController,
    ReactiveOracle,
    Target,
    View,
)
from llmop_dev.sim.fleet import DeploymentSim, Tick
from llmop_dev.sim.model import DEFAULT_PROMPT_TOKENS, Workload, weighted_quantile
from llmop_dev.sim.traces import Trace

POLICIES = ("llmop", "hpa", "keda", "reactive-oracle", "oracle")


@dataclass(frozen=True)
class _Scrape:
    at: float
    buckets: tuple[tuple[float, float], ...]
    running: float | None
    waiting: float | None
    prompt: tuple[float, float]
    output: tuple[float, float]
    requests: float


class EmulatedPrometheus:
    """Scrapes the fleet's summed counters every `interval_s` and answers the queries promql.py sends."""

    def __init__(self, interval_s: float = 15.0) -> None:
        self.interval_s = interval_s
        self.scrapes: list[_Scrape] = []

    def scrape(self, now: float, sim: DeploymentSim, tick: Tick) -> None:
        total = sim.total
        alive = tick.serving > 0
        self.scrapes.append(
            _Scrape(
                now,
                tuple(total.itl.cumulative()),
                tick.running if alive else None,
                tick.waiting if alive else None,
                (total.prompt_tokens.sum, total.prompt_tokens.count),
                (total.output_tokens.sum, total.output_tokens.count),
                total.requests,
            )
        )
        if len(self.scrapes) > 4096:
            del self.scrapes[:2048]

    def observe(self, now: float, window_s: float, percentile: float, rate_window_s: float = 60.0) -> Observation:
        past = [s for s in self.scrapes if s.at <= now]
        if not past or past[-1].running is None or past[-1].waiting is None:
            return Observation.failed("no running/waiting series (no serving pod scraped)", now, percentile)
        last = past[-1]
        first = next(s for s in past if s.at >= last.at - window_s)
        span = max(last.at - first.at, 1e-9)
        deltas = [
            (bound, (count - old) / span) for (bound, count), (_, old) in zip(last.buckets, first.buckets, strict=True)
        ]
        samples = deltas[-1][1] * window_s if first is not last else 0.0
        latency_s, below = resolve_quantile(percentile / 100, deltas) if samples > 0 else (math.nan, False)

        recent = [s for s in past if s.at >= last.at - rate_window_s and s.waiting is not None]
        rate_first = recent[0]
        rate_span = last.at - rate_first.at
        growth = _slope([(s.at, s.waiting or 0.0) for s in recent]) if len(recent) > 1 else None

        def mean(pair_now: tuple[float, float], pair_then: tuple[float, float]) -> float | None:
            count = pair_now[1] - pair_then[1]
            return (pair_now[0] - pair_then[0]) / count if count > 0 else None

        return Observation(
            latency_ms=None if math.isnan(latency_s) else latency_s * 1000,
            samples=samples,
            running=last.running,
            waiting=last.waiting,
            kv_usage=None,
            observed_at=last.at,
            below_resolution=below,
            percentile=percentile,
            request_rate=(last.requests - rate_first.requests) / rate_span if rate_span > 0 else None,
            waiting_growth_rps=growth,
            mean_prompt_tokens=mean(last.prompt, first.prompt),
            mean_output_tokens=mean(last.output, first.output),
        )


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope, as PromQL's deriv()."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / var if var > 0 else 0.0


@dataclass(frozen=True)
class Setup:
    """One replay: the deployment, its plan, the trace and the knobs every controller shares."""

    resource: Resource
    plan: Plan
    trace: Trace
    startup_seconds: float
    prompt_tokens: float = DEFAULT_PROMPT_TOKENS
    tick_s: float = 5.0
    scrape_s: float = 15.0

    @property
    def window_s(self) -> float:
        slo = self.resource.spec.slo.decode_latency
        return duration_seconds(slo.window) if slo else 120.0

    @property
    def target(self) -> Target:
        slo = self.resource.spec.slo.decode_latency
        if slo is None:
            raise ValueError(f"{self.resource.name} has no spec.slo.decodeLatency to autoscale on")
        return Target(slo.target_ms, slo.percentile, self.plan.min_replicas, self.plan.max_replicas)

    def controller(self, policy: str) -> Controller:
        target = self.target
        sim_physics = DeploymentSim("bench", "x", self.plan, Workload(0, 1)).physics
        if policy == "llmop":
            scaling = self.resource.spec.autoscaling
            config = PolicyConfig.from_plan(
                self.plan,
                target.percentile,
                self.window_s,
                duration_seconds(scaling.scale_up_stabilization),
                duration_seconds(scaling.scale_down_stabilization),
            )
            return LlmopController(config)
        if policy == "hpa":
            return HpaController(target)
        if policy == "keda":
            return KedaController(target)
        if policy == "reactive-oracle":
            return ReactiveOracle(target, sim_physics, self.trace, self.prompt_tokens)
        if policy == "oracle":
            return ClairvoyantOracle(target, sim_physics, self.trace, self.prompt_tokens, self.startup_seconds)
        raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")


@dataclass
class Result:
    """What a replay measured; `to_json` is the `llmop simulate --json` object."""

    policy: str
    trace: str
    slo_minutes_pct: float
    gpu_hours: float
    scale_events: int
    step_to_decision_s: float | None
    queued_minutes_pct: float
    minutes: int
    timeline: list[dict[str, float]] = field(default_factory=list)
    reasons: list[tuple[float, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "trace": self.trace,
            "slo_minutes_pct": round(self.slo_minutes_pct, 2),
            "gpu_hours": round(self.gpu_hours, 3),
            "scale_events": self.scale_events,
            "step_to_decision_s": None if self.step_to_decision_s is None else round(self.step_to_decision_s, 1),
            "queued_minutes_pct": round(self.queued_minutes_pct, 2),
            "minutes": self.minutes,
        }


def run(setup: Setup, policy: str, keep_timeline: bool = False) -> Result:
    """Replay `setup.trace` under `policy`; every controller starts from the same warm fleet."""
    controller = setup.controller(policy)
    target = setup.target
    first = setup.trace.at(0.0)
    sim = DeploymentSim("bench", setup.resource.name, setup.plan,
                        Workload(first.rps, first.output_tokens, setup.prompt_tokens),
                        startup_seconds=setup.startup_seconds, per_pod_metrics=False)  # fmt: skip
    start_oracle = ReactiveOracle(target, sim.physics, setup.trace, setup.prompt_tokens)
    for _ in range(start_oracle.need(0.0)):
        sim.add_pod(0.0, ready_at=0.0)
    prometheus = EmulatedPrometheus(setup.scrape_s)
    quantile = target.percentile / 100
    gpu_seconds = 0.0
    minute_points: list[tuple[float, float]] = []
    minute_waiting = 0.0
    met = queued = minutes = events = 0
    ups: list[float] = []
    timeline: list[dict[str, float]] = []
    next_scrape = next_decision = 0.0
    now, tick_s = 0.0, setup.tick_s
    while now < setup.trace.duration - 1e-9:
        point = setup.trace.at(now)
        sim.workload = Workload(point.rps, point.output_tokens, setup.prompt_tokens)
        tick = sim.advance(now, tick_s)
        gpu_seconds += len(sim.pods) * setup.plan.tensor_parallel * tick_s
        minute_points.extend(tick.points)
        minute_waiting += tick.waiting * tick_s
        now += tick_s
        if now >= next_scrape - 1e-9:
            prometheus.scrape(now, sim, tick)
            next_scrape += setup.scrape_s
        if int(now // 60) > int((now - tick_s) // 60) or now >= setup.trace.duration - 1e-9:
            p = weighted_quantile(minute_points, quantile)
            met += p is None or p <= target.target_ms
            queued += minute_waiting / 60.0 >= 1.0
            minutes += 1
            if keep_timeline:
                timeline.append({"t": now, "rps": point.rps, "pods": len(sim.pods), "ready": tick.serving,
                                 "p": -1.0 if p is None else p, "waiting": tick.waiting})  # fmt: skip
            minute_points, minute_waiting = [], 0.0
        if now >= next_decision - 1e-9:
            next_decision += controller.interval_s
            ready = len(sim.serving_pods(now))
            observation = prometheus.observe(now, setup.window_s, target.percentile)
            backlog = sum(pod.queue for pod in sim.pods.values())
            view = View(now, len(sim.pods), ready, observation, backlog)
            desired = controller.desired(view)
            if desired != len(sim.pods):
                if desired > len(sim.pods):
                    ups.append(now)
                sim.scale_to(desired, now)
                events += 1
    return Result(
        policy=policy,
        trace=setup.trace.name,
        slo_minutes_pct=100.0 * met / max(minutes, 1),
        gpu_hours=gpu_seconds / 3600.0,
        scale_events=events,
        step_to_decision_s=_step_to_decision(setup, start_oracle, ups),
        queued_minutes_pct=100.0 * queued / max(minutes, 1),
        minutes=minutes,
        timeline=timeline,
        reasons=list(getattr(controller, "reasons", [])),
    )


def _step_to_decision(setup: Setup, oracle: ReactiveOracle, ups: list[float]) -> float | None:
    """Mean time from each upward load step that needs more replicas to the first scale-up decision."""
    delays: list[float] = []
    for at in setup.trace.steps_up():
        if oracle.need(at) <= oracle.need(at - 1.0):
            continue
        after = [t - at for t in ups if at - setup.startup_seconds - 30.0 <= t <= at + 900.0]
        if after:
            delays.append(min(after))
    return sum(delays) / len(delays) if delays else None
