"""One replay: a workload through the simulated fleet under one controller, scraped by the emulated Prometheus."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from llmop.api.spec import DecodeLatencySLO
from llmop.autoscale.policy import PolicyConfig
from llmop.plan.parse import Resource
from llmop.plan.types import Plan
from llmop_dev.replay import baselines, capacity_cache, references, score
from llmop_dev.replay.exporter import TgiPodMetrics, VllmPodMetrics
from llmop_dev.replay.fleet import Fleet, MinuteRecord
from llmop_dev.replay.hardware import Hardware
from llmop_dev.replay.llmop_policy import LlmopController
from llmop_dev.replay.prometheus import MiniPrometheus
from llmop_dev.replay.types import Controller, PodMetrics, View, Workload

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Settings = TypeVar("Settings", bound="DataclassInstance")

REFERENCES = ("reactive-frontier", "reactive", "reactive-late", "oracle")
POLICIES = ("llmop", *baselines.BASELINES, *REFERENCES)
SCRAPE_S = 15.0
TICK_S = 5.0
WARM_HEADROOM = 0.2  # every replay starts from the replicas the true load at t=0 needs with this headroom


@dataclass(frozen=True)
class Scenario:
    """Everything a replay depends on apart from the controller."""

    resource: Resource
    plan: Plan
    workload: Workload
    startup_s: float
    gpu_speed: float = 1.0
    seed: int = 0
    router: str = "least-requests"
    ttft_bound_s: float = score.DEFAULT_TTFT_BOUND_S
    baseline_target: float = 0.8
    policy_overrides: tuple[tuple[str, str], ...] = ()  # llmop's PolicyConfig fields set otherwise (ablations)
    late_s: float = references.LATE_S  # how late `reactive-late` sees the true load

    def __post_init__(self) -> None:
        ttft = self.resource.spec.slo.time_to_first_token
        if ttft is not None and self.ttft_bound_s == score.DEFAULT_TTFT_BOUND_S:
            object.__setattr__(self, "ttft_bound_s", float(ttft.target_ms) / 1000.0)  # the spec's own TTFT SLO

    @property
    def slo(self) -> DecodeLatencySLO:
        slo = self.resource.spec.slo.decode_latency
        if slo is None:
            raise ValueError(f"{self.resource.name}: spec.slo.decodeLatency is required to autoscale")
        return slo

    @cached_property
    def _hardware(self) -> Hardware:
        return Hardware.from_plan(self.plan, gpu_speed=self.gpu_speed)

    @cached_property
    def _capacities(self) -> dict[tuple[float, float], float]:
        return {}

    def hardware(self) -> Hardware:
        return self._hardware

    def true_capacity(self, prompt: float, output: float) -> float:
        """Requests/s one replica of the simulated GPU sustains within the SLO and the TTFT bound (ground truth,
        measured by running the physics)."""
        known = self._capacities.get((prompt, output))
        if known is None:
            target, percentile = float(self.slo.target_ms), float(self.slo.percentile)
            known = capacity_cache.capacity_rps(self.hardware(), prompt, output, target, percentile, self.ttft_bound_s)
            self._capacities[(prompt, output)] = known
        return known

    def sizer(self, headroom: float) -> references.Sizer:
        return references.Sizer(
            self.workload, self.true_capacity, headroom, self.plan.min_replicas, self.plan.max_replicas
        )

    def plan_capacity(self) -> tuple[float, float]:
        """(req/s, concurrent sequences) per replica as llmop's plan states them: what a competent user of a
        request-rate or concurrency autoscaler would configure it from (Little's law at the SLO, with the trace's
        mean output length)."""
        concurrency = float(self.plan.max_concurrency_at_slo or 1)
        requests = self.workload.requests
        output = max(sum(r.output_tokens for r in requests) / max(len(requests), 1), 1.0)  # the workload's mean
        return concurrency / (output * self.slo.target_ms / 1000.0), concurrency

    def controller(self, policy: str, headroom: float = 0.0, hold_s: float = 0.0) -> Controller:
        if policy == "llmop":
            spec = self.resource.spec
            config = PolicyConfig.from_plan(self.plan, self.slo, spec.autoscaling, spec.slo.time_to_first_token)
            config = override(config, self.policy_overrides)
            return LlmopController(config, self.plan.engine, self.plan.engine_version)
        if policy in baselines.BASELINES:
            rps, concurrency = self.plan_capacity()
            return baselines.make_baseline(
                policy,
                engine=self.plan.engine,
                min_replicas=self.plan.min_replicas,
                max_replicas=self.plan.max_replicas,
                capacity_rps=rps,
                capacity_concurrency=concurrency,
                fraction=self.baseline_target,
                target_ms=float(self.slo.target_ms),
                percentile=float(self.slo.percentile),
            )
        if policy in ("reactive", "reactive-frontier"):
            return references.ReactiveReference(self.sizer(headroom), hold_s)
        if policy == "reactive-late":
            return references.LateReactiveReference(self.sizer(headroom), hold_s, self.late_s)
        if policy == "oracle":
            return references.ClairvoyantOracle(self.sizer(0.1), self.startup_s)
        raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")

    def metrics_factory(self) -> PodMetrics:
        if self.plan.engine == "tgi":
            return TgiPodMetrics()
        return VllmPodMetrics.for_argv(self.plan.args)  # the pods run the argv llmop rendered


def override(config: Settings, overrides: tuple[tuple[str, str], ...]) -> Settings:
    """`config` with fields set from text (`tolerance=0.3`, `calibration=none`, `percentile_model=false`); a dotted
    key sets a field of a nested settings object (`calibration.half_life_s=90`)."""
    values: dict[str, Any] = {}
    for key, text in overrides:
        if "." in key:
            outer, inner = key.split(".", 1)
            nested = values.get(outer, getattr(config, outer))
            values[outer] = override(nested, ((inner, text),))
            continue
        current = getattr(config, key)  # AttributeError names an unknown field
        if text.lower() == "none":
            values[key] = None
        elif isinstance(current, bool):
            values[key] = text.lower() in ("1", "true", "yes", "on")
        elif isinstance(current, int | float) or current is None:
            values[key] = float(text)
        else:
            raise ValueError(f"cannot set {key} from {text!r}")
    return replace(config, **values)


@dataclass
class Result:
    """What a replay measured; `to_json` is the `llmop simulate --json` object."""

    policy: str
    trace: str
    score: score.Score
    scale_events: int
    step_to_decision_s: float | None
    timeline: list[dict[str, float]] = field(default_factory=list)
    reasons: list[tuple[float, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        s = self.score
        return {
            "policy": self.policy,
            "trace": self.trace,
            "slo_minutes_pct": round(s.slo_minutes_pct, 2),
            "gpu_hours": round(s.gpu_hours, 3),
            "scale_events": self.scale_events,
            "step_to_decision_s": None if self.step_to_decision_s is None else round(self.step_to_decision_s, 1),
            "ttft_p95_s": None if s.ttft_p95_s is None else round(s.ttft_p95_s, 3),
            "queue_minutes_pct": round(s.queue_minutes_pct, 2),
            "timeouts": s.timeouts,
            "rejected": s.rejected,
            "minutes": s.minutes,
        }


def run(
    scenario: Scenario, policy: str, headroom: float = 0.0, hold_s: float = 0.0, keep_timeline: bool = False
) -> Result:
    """Replay the scenario's workload under `policy`; every controller starts from the same warm fleet."""
    controller = scenario.controller(policy, headroom, hold_s)
    workload = scenario.workload
    fleet = Fleet(
        scenario.hardware(),
        scenario.metrics_factory,
        router=scenario.router,
        seed=scenario.seed,
        startup_s=scenario.startup_s,
    )
    warm = scenario.sizer(WARM_HEADROOM).need(0.0)
    for _ in range(warm):
        fleet.add_pod(0.0, ready_at=0.0)
    prometheus = MiniPrometheus(SCRAPE_S)
    requests = workload.requests
    arrivals_at = [request.arrival_s for request in requests]
    next_scrape = next_decision = 0.0
    events = 0
    ups: list[float] = []
    timeline: list[dict[str, float]] = []
    now = 0.0
    while now < workload.duration_s - 1e-9:
        until = min(now + TICK_S, workload.duration_s)
        lo, hi = bisect.bisect_left(arrivals_at, now), bisect.bisect_left(arrivals_at, until)
        fleet.advance(until, requests[lo:hi])
        now = until
        if now >= next_scrape - 1e-9:
            prometheus.scrape(now, fleet.targets())
            next_scrape += SCRAPE_S
        if now >= next_decision - 1e-9:
            next_decision += controller.interval_s
            view = View(now, fleet.pods_view(), prometheus.runner(now))
            desired = controller.desired(view)
            if desired != view.current:
                if desired > view.current:
                    ups.append(now)
                fleet.scale_to(desired, now)
                events += 1
            if keep_timeline:
                timeline.append({"t": now, "rate": workload.intensity(now), "pods": view.current,
                                 "ready": view.ready, "desired": desired})  # fmt: skip
    fleet.advance(workload.duration_s, ())
    minutes, ttfts = _minutes(scenario, fleet)
    rejected = sum(record.rejected for record in fleet.minutes.values())
    result = score.summarize(minutes, ttfts, fleet.gpu_seconds(workload.duration_s), rejected)
    return Result(
        policy=getattr(controller, "name", policy),
        trace=workload.name,
        score=result,
        scale_events=events,
        step_to_decision_s=_step_to_decision(scenario, ups),
        timeline=timeline,
        reasons=list(getattr(controller, "reasons", [])),
    )


def _minutes(scenario: Scenario, fleet: Fleet) -> tuple[list[score.Minute], list[float]]:
    target_s = float(scenario.slo.target_ms) / 1000.0
    percentile = float(scenario.slo.percentile)
    count = math.ceil(scenario.workload.duration_s / 60.0 - 1e-9)
    judged: list[score.Minute] = []
    ttfts: list[float] = []
    for index in range(count):
        record = fleet.minutes.get(index) or MinuteRecord()
        ttfts.extend(record.ttft_s)
        judged.append(
            score.judge_minute(
                index,
                record.itl_points(),
                record.ttft_s,
                record.mean_waiting,
                record.timed_out,
                target_s,
                percentile,
                scenario.ttft_bound_s,
            )
        )
    return judged, ttfts


def _step_to_decision(scenario: Scenario, ups: list[float]) -> float | None:
    """Mean time from each rise of the true need (h=0 sizing, by a third or more within a minute) to the first
    scale-up decision after it."""
    sizer = scenario.sizer(0.0)
    duration = scenario.workload.duration_s
    delays: list[float] = []
    t = 60.0
    while t < duration:
        before, after = sizer.need(t - 60.0), sizer.need(t)
        if after > before and after >= before * 4 / 3:
            later = [u - (t - 60.0) for u in ups if t - 60.0 <= u <= t + 900.0]
            if later:
                delays.append(min(later))
            t += 600.0
        else:
            t += 30.0
    return sum(delays) / len(delays) if delays else None


def frontier(scenario: Scenario, policy: str = "reactive") -> list[dict[str, float]]:
    """The perfect-knowledge reactive family (or its late twin, `reactive-late`): headroom x hold, ten points."""
    points = []
    for hold_s in references.HOLDS_S:
        for headroom in references.HEADROOMS:
            result = run(scenario, policy, headroom, hold_s)
            points.append({"headroom": headroom, "hold_s": hold_s, **_point(result)})
    return points


def _point(result: Result) -> dict[str, Any]:
    data = result.to_json()
    return {key: data[key] for key in ("slo_minutes_pct", "gpu_hours", "queue_minutes_pct", "timeouts", "ttft_p95_s")}
