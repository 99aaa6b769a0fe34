"""The deployment's pods behind a router: start-up, scaling, draining, routing, GPU-seconds and the scoring ledger."""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from llmop_dev.replay.engine import BINS_PER_S, EnginePod
from llmop_dev.replay.exporter import GatewayCounter
from llmop_dev.replay.hardware import Hardware
from llmop_dev.replay.types import PodMetrics, PodView, Request, ScrapeTarget


@dataclass
class MinuteRecord:
    """What clients saw in minute m = [60m, 60m + 60) s of the replay.

    `itl_bins`: inter-token latencies as 0.1 ms bin -> tokens (token-weighted, every token after each request's
    first); `ttft_s`: TTFT of each request whose first token came in the minute; `timed_out`: requests given up in
    the minute (no first token within timeout_s, lost when a draining pod's grace ended); `rejected`: refused as
    longer than the model's context (no autoscaler can help them, so they are reported apart and not judged);
    `finished`: requests completed; `waiting_sum / waiting_samples`: waiting requests (router queue + every pod's
    queue), sampled at each quantum end."""

    itl_bins: dict[int, float] = field(default_factory=dict)
    ttft_s: list[float] = field(default_factory=list)
    timed_out: int = 0
    rejected: int = 0
    finished: int = 0
    waiting_sum: float = 0.0
    waiting_samples: int = 0

    def itl_points(self) -> list[tuple[float, float]]:
        """(value_s, tokens), ascending."""
        return [(key / BINS_PER_S, tokens) for key, tokens in sorted(self.itl_bins.items())]

    @property
    def tokens(self) -> float:
        return sum(self.itl_bins.values())

    @property
    def mean_waiting(self) -> float:
        return self.waiting_sum / self.waiting_samples if self.waiting_samples else 0.0

    def itl_quantile(self, q: float) -> float:
        """Token-weighted quantile (q in 0..1) of the minute's ITL; NaN when no tokens."""
        return quantile(self.itl_points(), q)


def quantile(points: Sequence[tuple[float, float]], q: float) -> float:
    """The q-quantile (0..1) of weighted (value, weight) points sorted by value: the smallest value whose
    cumulative weight reaches q of the total."""
    total = sum(weight for _, weight in points)
    if total <= 0:
        return math.nan
    goal, running = q * total, 0.0
    for value, weight in points:
        running += weight
        if running >= goal - 1e-9:
            return value
    return points[-1][0]


class MinuteLedger:
    """The `Ledger` the fleet's pods report into, kept per minute."""

    def __init__(self) -> None:
        self.minutes: dict[int, MinuteRecord] = {}

    def at(self, t: float) -> MinuteRecord:
        minute = int(t // 60)
        record = self.minutes.get(minute)
        if record is None:
            record = self.minutes[minute] = MinuteRecord()
        return record

    def itl(self, t: float, value_s: float, tokens: float) -> None:
        bins = self.at(t).itl_bins
        key = round(value_s * BINS_PER_S)
        bins[key] = bins.get(key, 0.0) + tokens

    def ttft(self, t: float, value_s: float) -> None:
        self.at(t).ttft_s.append(value_s)

    def timed_out(self, t: float, count: int = 1) -> None:
        self.at(t).timed_out += count

    def rejected(self, t: float) -> None:
        self.at(t).rejected += 1

    def finished(self, t: float) -> None:
        self.at(t).finished += 1


@dataclass
class FleetPod:
    name: str
    engine: EnginePod
    metrics: PodMetrics
    created_s: float
    ready_at: float
    terminating_at: float | None = None
    gone_at: float | None = None
    gateway: GatewayCounter = field(default_factory=GatewayCounter)  # what the gateway routed to this pod

    def serving(self, now: float) -> bool:
        """Server up and in the Service: ready and not terminating."""
        return self.terminating_at is None and self.ready_at <= now


class Fleet:
    """The pods of one deployment and the router in front of them, replayed in quanta of `quantum_s`."""

    def __init__(
        self,
        hardware: Hardware,
        metrics_factory: Callable[[], PodMetrics],
        *,
        router: str = "least-requests",
        seed: int = 0,
        startup_s: float,
        startup_jitter: float = 0.15,
        grace_s: float = 30.0,
        timeout_s: float = 300.0,
        quantum_s: float = 0.25,
        namespace: str = "bench",
        deployment: str = "bench",
    ) -> None:
        if router not in ("least-requests", "round-robin"):
            raise ValueError(f"unknown router {router}")
        self.hardware = hardware
        self.metrics_factory = metrics_factory
        self.router = router
        self.seed = seed
        self.rng = random.Random(seed)
        self.startup_s = startup_s
        self.startup_jitter = startup_jitter
        self.grace_s = grace_s
        self.timeout_s = timeout_s
        self.quantum_s = quantum_s
        self.namespace = namespace
        self.deployment = deployment
        self.now = 0.0
        self.pods: list[FleetPod] = []  # every pod not gone yet
        self.gone: list[FleetPod] = []
        self.queue: deque[Request] = deque()  # the router's, while no pod is ready
        self.early: list[Request] = []  # handed to advance() before they were due
        self.ledger = MinuteLedger()
        self.created = 0
        self.rr = 0

    @property
    def minutes(self) -> dict[int, MinuteRecord]:
        return self.ledger.minutes

    # ---- Kubernetes side -----------------------------------------------------------------------------------
    def add_pod(self, now: float, ready_at: float | None = None) -> str:
        """Create a pod at `now`; ready after startup_s x uniform(1 - jitter, 1 + jitter) unless `ready_at`."""
        if ready_at is None:
            ready_at = now + self.startup_s * (1 + self.startup_jitter * (2 * self.rng.random() - 1))
        index = self.created
        self.created += 1
        name = f"{self.deployment}-{index:05d}"
        metrics = self.metrics_factory()
        engine = EnginePod(
            self.hardware,
            metrics,
            seed=self.seed * 1_000_003 + index,
            timeout_s=self.timeout_s,
            ledger=self.ledger,
            now=ready_at,
        )
        self.pods.append(FleetPod(name, engine, metrics, now, ready_at))
        return name

    def scale_to(self, replicas: int, now: float) -> None:
        """Add pods, or remove starting pods (newest first), then ready pods with the fewest requests in flight."""
        live = [pod for pod in self.pods if pod.terminating_at is None]
        for _ in range(replicas - len(live)):
            self.add_pod(now)
        excess = len(live) - max(replicas, 0)
        if excess <= 0:
            return
        starting = sorted((p for p in live if p.ready_at > now), key=lambda p: p.created_s, reverse=True)
        ready = sorted((p for p in live if p.ready_at <= now), key=lambda p: p.engine.in_flight)
        for pod in (starting + ready)[:excess]:
            pod.terminating_at = now
            if pod.ready_at > now:  # never served: gone at once
                self._gone(pod, now)

    def pods_view(self) -> tuple[PodView, ...]:
        return tuple(
            PodView(pod.name, pod.ready_at <= self.now, pod.created_s)
            for pod in self.pods
            if pod.terminating_at is None
        )

    def targets(self) -> list[ScrapeTarget]:
        """Pods whose metrics server is up (ready, or draining), and the gateway's per-pod counters."""
        labels = {"namespace": self.namespace, "llmdeployment": self.deployment}
        up = [pod for pod in self.pods if pod.ready_at <= self.now]
        engines = [ScrapeTarget({**labels, "pod": pod.name}, pod.metrics) for pod in up]
        return engines + [ScrapeTarget({**labels, "pod": pod.name, "job": "gateway"}, pod.gateway) for pod in up]

    def gpu_seconds(self, now: float) -> float:
        """Pod creation to the end of its termination (or `now`), times the GPUs of a replica."""
        total = 0.0
        for pod in (*self.gone, *self.pods):
            end = now if pod.gone_at is None else min(pod.gone_at, now)
            total += max(0.0, end - pod.created_s)
        return total * self.hardware.gpus

    # ---- replay --------------------------------------------------------------------------------------------
    def advance(self, until_s: float, arrivals: Sequence[Request]) -> None:
        """Run quanta up to `until_s`, routing each arrival (sorted by time) when it arrives; arrivals at or after
        `until_s` are held for the next call."""
        if self.early:
            arrivals = [*self.early, *arrivals]
            self.early = []
        index, count = 0, len(arrivals)
        while self.now < until_s - 1e-12:
            start = self.now
            end = min(until_s, (math.floor(start / self.quantum_s + 1e-9) + 1) * self.quantum_s)
            while index < count and arrivals[index].arrival_s < end:
                request = arrivals[index]
                index += 1
                t = max(request.arrival_s, start)
                self._readiness(t)
                self._route(request, t)
            self._readiness(end)
            for pod in self.pods:
                if pod.ready_at < end:
                    pod.engine.advance(end)
            self.now = end
            self._end_quantum(start, end)
        self.early = list(arrivals[index:])

    def _readiness(self, t: float) -> None:
        """Pods that became ready by `t` take the router's queue."""
        if not self.queue:
            return
        if not any(pod.serving(t) for pod in self.pods):
            return
        queued, self.queue = self.queue, deque()
        for request in queued:
            if t - request.arrival_s > self.timeout_s:
                self.ledger.timed_out(request.arrival_s + self.timeout_s)
            else:
                self._route(request, t)

    def _route(self, request: Request, t: float) -> None:
        serving = [pod for pod in self.pods if pod.serving(t)]
        if not serving:
            self.queue.append(request)
            return
        if self.router == "round-robin":
            pod = serving[self.rr % len(serving)]
            self.rr += 1
        else:
            for candidate in serving:
                candidate.engine.advance(t)
            offset = self.rr % len(serving)  # ties go round the pods, not always to the first
            self.rr += 1
            order = serving[offset:] + serving[:offset]
            pod = min(order, key=lambda p: p.engine.in_flight)
        pod.gateway.observe_arrival()
        pod.engine.submit(request, t)

    def _end_quantum(self, start: float, end: float) -> None:
        while self.queue and end - self.queue[0].arrival_s > self.timeout_s:
            request = self.queue.popleft()
            self.ledger.timed_out(request.arrival_s + self.timeout_s)
        waiting = len(self.queue)
        for pod in list(self.pods):
            if pod.ready_at >= end:
                continue
            engine = pod.engine
            engine.publish(start)
            waiting += engine.num_waiting
            if pod.terminating_at is not None:
                if engine.in_flight == 0:
                    self._gone(pod, max(pod.terminating_at, min(engine.last_finish_s, end)))
                elif end >= pod.terminating_at + self.grace_s:
                    engine.abort_all(pod.terminating_at + self.grace_s)
                    self._gone(pod, pod.terminating_at + self.grace_s)
        record = self.ledger.at(start)
        record.waiting_sum += waiting
        record.waiting_samples += 1

    def _gone(self, pod: FleetPod, t: float) -> None:
        pod.gone_at = t
        self.pods.remove(pod)
        self.gone.append(pod)
