"""Simulated pods of one LLMDeployment: start-up delay, per-pod queues, and the counters engines export."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from llmop.autoscale.promql import VLLM_TTFT_BUCKETS_S, buckets_for
from llmop.plan.types import Plan
from llmop_dev.sim.model import Physics, ReplicaState, Workload, replica_state

# Bounds of the token-count histograms (vLLM builds them 1-2-5 up to max-model-len; TGI 100 linear buckets).
TOKEN_BUCKETS = tuple(float(m * 10**e) for e in range(0, 6) for m in (1, 2, 5))
TGI_BATCH_BUCKETS = tuple(float(2**i) for i in range(11))


class Histogram:
    """Cumulative histogram with fractional counts (the simulator adds expected observations per tick)."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0.0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float, weight: float = 1.0) -> None:
        if weight <= 0:
            return
        self.counts[bisect.bisect_left(self.bounds, value)] += weight
        self.sum += value * weight

    @property
    def count(self) -> float:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, float]]:
        """(upper bound, cumulative count) pairs ending with +Inf."""
        pairs: list[tuple[float, float]] = []
        total = 0.0
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            total += count
            pairs.append((bound, total))
        return pairs


@dataclass
class PodMetrics:
    """Everything one engine pod exports, cumulative since the pod started serving."""

    engine: str
    itl: Histogram = field(init=False)  # vLLM: per token; TGI: per decode step (tgi_batch_inference_duration)
    ttft: Histogram = field(init=False)  # TGI: request queue duration
    prefill: Histogram = field(init=False)  # TGI prefill steps
    request_tpot: Histogram = field(init=False)  # vLLM request_time_per_output_token / TGI mean_time_per_token
    prompt_tokens: Histogram = field(init=False)
    output_tokens: Histogram = field(init=False)
    batch_size: Histogram = field(init=False)
    requests: float = 0.0
    prompt_total: float = 0.0
    generation_total: float = 0.0
    running: float = 0.0
    waiting: float = 0.0
    kv_usage: float = 0.0
    reserved_tokens: float = 0.0

    def __post_init__(self) -> None:
        latency_bounds = buckets_for(self.engine)
        self.itl = Histogram(latency_bounds)
        self.ttft = Histogram(VLLM_TTFT_BUCKETS_S if self.engine == "vllm" else latency_bounds)
        self.prefill = Histogram(latency_bounds)
        self.request_tpot = Histogram(latency_bounds)
        self.prompt_tokens = Histogram(TOKEN_BUCKETS)
        self.output_tokens = Histogram(TOKEN_BUCKETS)
        self.batch_size = Histogram(TGI_BATCH_BUCKETS)


@dataclass
class Pod:
    name: str
    created_at: float
    ready_at: float
    queue: float = 0.0
    metrics: PodMetrics | None = None
    state: ReplicaState | None = None

    def serving(self, now: float) -> bool:
        return now >= self.ready_at


@dataclass(frozen=True)
class Tick:
    """What the fleet did over one tick: the ITL points of all serving pods, weighted by tokens served."""

    points: tuple[tuple[float, float], ...]
    tokens: float
    running: float
    waiting: float
    serving: int
    pods: int


class DeploymentSim:
    """One LLMDeployment's pods under a workload; `advance` moves time and updates the exported counters."""

    def __init__(
        self,
        namespace: str,
        name: str,
        plan: Plan,
        workload: Workload,
        startup_seconds: float | None = None,
        per_pod_metrics: bool = True,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.plan = plan
        self.engine = plan.engine
        self.physics = Physics.from_plan(plan)
        self.workload = workload
        self.startup_seconds = float(plan.startup_seconds if startup_seconds is None else startup_seconds)
        self.per_pod_metrics = per_pod_metrics
        self.pods: dict[str, Pod] = {}
        self.total = PodMetrics(self.engine)  # all pods together, never decreasing (what rate() over pods sees)
        self._serial = 0

    # -- pods ---------------------------------------------------------------------------------------------------
    def add_pod(self, now: float, name: str | None = None, ready_at: float | None = None) -> Pod:
        if name is None:
            self._serial += 1
            name = f"{self.name}-{self._serial:05d}"
        pod = Pod(name, now, now + self.startup_seconds if ready_at is None else ready_at)
        if self.per_pod_metrics:
            pod.metrics = PodMetrics(self.engine)
        self.pods[name] = pod
        return pod

    def remove_pod(self, name: str, now: float) -> None:
        pod = self.pods.pop(name, None)
        if pod is None or pod.queue <= 0:
            return
        survivors = [p for p in self.pods.values() if p.serving(now)] or list(self.pods.values())
        for other in survivors:  # clients retry the requests that pod held
            other.queue += pod.queue / len(survivors)

    def scale_to(self, replicas: int, now: float) -> None:
        """Add pods, or remove starting pods first, then the newest (as the Deployment controller does)."""
        while len(self.pods) < replicas:
            self.add_pod(now)
        if len(self.pods) > replicas:
            order = sorted(self.pods.values(), key=lambda p: (p.serving(now), -p.created_at))
            for pod in order[: len(self.pods) - replicas]:
                self.remove_pod(pod.name, now)

    def serving_pods(self, now: float) -> list[Pod]:
        return [pod for pod in self.pods.values() if pod.serving(now)]

    # -- time ---------------------------------------------------------------------------------------------------
    def advance(self, now: float, dt: float) -> Tick:
        """Simulate [now, now + dt): offered load split evenly over the serving pods."""
        serving = self.serving_pods(now)
        work = self.workload
        points: list[tuple[float, float]] = []
        tokens = running = waiting = 0.0
        if not serving:
            return Tick((), 0.0, 0.0, 0.0, 0, len(self.pods))
        share = work.rps / len(serving)
        for pod in serving:
            state = replica_state(self.physics, work, share, pod.queue)
            pod.state = state
            served_rps = min(state.service_rps, share + pod.queue / dt) if state.saturated else share
            pod.queue = pod.queue + (share - served_rps) * dt
            pod.queue = pod.queue if pod.queue > 1e-6 else 0.0
            pod_tokens = served_rps * dt * work.output_tokens
            tokens += pod_tokens
            running += state.running
            waiting += pod.queue
            points.extend((ms, weight * pod_tokens) for ms, weight in state.points)
            for metrics in (pod.metrics, self.total):
                if metrics is not None:
                    self._record(metrics, state, pod, served_rps, dt)
        return Tick(tuple(points), tokens, running, waiting, len(serving), len(self.pods))

    def _record(self, m: PodMetrics, state: ReplicaState, pod: Pod, served_rps: float, dt: float) -> None:
        work = self.workload
        requests = served_rps * dt
        tokens = requests * work.output_tokens
        if self.engine == "vllm":
            for ms, weight in state.points:
                m.itl.observe(ms / 1000.0, weight * tokens)
        else:
            steps = tokens / max(state.running, 1.0)
            for ms, weight in state.step_points:
                m.itl.observe(ms / 1000.0, weight * steps)
            m.batch_size.observe(state.running, steps)
        prefill_s = work.prompt_tokens * self.physics.prefill_ms_per_token / 1000.0
        queue_s = pod.queue / state.service_rps if state.service_rps > 0 else 0.0
        if self.engine == "vllm":
            m.ttft.observe(queue_s + prefill_s + state.mean_itl_ms / 1000.0, requests)
        else:
            m.ttft.observe(queue_s, requests)
            m.prefill.observe(prefill_s, requests)
        m.request_tpot.observe(state.mean_itl_ms / 1000.0 + prefill_s / max(work.output_tokens, 1.0), requests)
        m.prompt_tokens.observe(work.prompt_tokens, requests)
        m.output_tokens.observe(work.output_tokens, requests)
        m.requests += requests
        m.prompt_total += requests * work.prompt_tokens
        m.generation_total += tokens
        if m is not self.total:
            m.running = state.running
            m.waiting = pod.queue
            m.reserved_tokens = state.running * (work.prompt_tokens + work.output_tokens)
            m.kv_usage = min(state.running * work.context / max(self.physics.kv_cache_tokens, 1), 1.0)

    def current_itl_ms(self, now: float) -> float:
        """Median inter-token time a new request would see on the least loaded serving pod."""
        serving = self.serving_pods(now)
        if not serving:
            return self.physics.step_ms(1, self.workload.context)
        share = self.workload.rps / len(serving)
        state = replica_state(self.physics, self.workload, share, min(p.queue for p in serving))
        ordered = sorted(state.points)
        acc = 0.0
        for ms, weight in ordered:
            acc += weight
            if acc >= 0.5:
                return ms
        return state.mean_itl_ms
