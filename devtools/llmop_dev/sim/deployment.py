"""One simulated LLMDeployment: replay EnginePods behind a least-requests router, advanced in wall-clock time."""

from __future__ import annotations

import zlib
from collections import deque
from dataclasses import dataclass

from llmop.plan.types import Plan
from llmop_dev.replay.engine import EnginePod
from llmop_dev.replay.exporter import SampleTuple, TgiPodMetrics, VllmPodMetrics
from llmop_dev.replay.hardware import Hardware
from llmop_dev.replay.types import Request
from llmop_dev.sim.load import LoadSource, RateSource

TIMEOUT_S = 300.0  # a client gives up on a request without a first token after this long (as the replay does)


@dataclass
class SimPod:
    """One engine pod: serving (scraped, routed to) from `ready_at`."""

    name: str
    created_s: float
    ready_at: float
    engine: EnginePod
    metrics: VllmPodMetrics | TgiPodMetrics

    def serving(self, now: float) -> bool:
        return now >= self.ready_at


@dataclass(frozen=True)
class Progress:
    """Where one submitted request stands: output tokens the client has, at engine time `at`; `done` once gone."""

    tokens: int
    at: float
    done: bool


class DeploymentSim:
    """The pods of one LLMDeployment under a load source. Not thread-safe: the Fleet's lock guards it."""

    def __init__(
        self,
        namespace: str,
        name: str,
        plan: Plan,
        source: LoadSource | None = None,
        startup_seconds: float | None = None,
        now: float = 0.0,
        gpu_speed: float = 1.0,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.seed = zlib.crc32(f"{namespace}/{name}".encode())
        self.plan = plan
        self.engine = plan.engine
        self.hardware = Hardware.from_plan(plan, gpu_speed)
        self.source: LoadSource = source or RateSource(0.0, seed=self.seed)
        self.startup_seconds = float(plan.startup_seconds if startup_seconds is None else startup_seconds)
        self.pods: dict[str, SimPod] = {}
        self.queue: deque[Request] = deque()  # the Service's, while no pod is ready
        self.now = now
        self._serial = 0
        self._rr = 0
        self._tracked: dict[int, str] = {}  # id of a submitted request -> the pod that holds it

    # ---- pods ------------------------------------------------------------------------------------------------
    def _metrics(self) -> VllmPodMetrics | TgiPodMetrics:
        hw = self.hardware
        if self.engine == "tgi":
            return TgiPodMetrics(max_input_tokens=max(hw.max_model_len - 1, 1), max_total_tokens=hw.max_model_len)
        # the pods run the argv llmop rendered
        return VllmPodMetrics.for_argv(self.plan.args, self.plan.model_name, hw.max_model_len)

    def add_pod(self, now: float, name: str | None = None, ready_at: float | None = None) -> SimPod:
        """A pod created at `now`, serving `startup_seconds` later unless `ready_at` says when."""
        self._serial += 1
        if name is None:
            name = f"{self.name}-{self._serial:05d}"
        ready = now + self.startup_seconds if ready_at is None else ready_at
        metrics = self._metrics()
        engine = EnginePod(self.hardware, metrics, seed=self.seed + self._serial, timeout_s=TIMEOUT_S,
                           now=max(ready, self.now))  # fmt: skip
        pod = SimPod(name, now, ready, engine, metrics)
        self.pods[name] = pod
        return pod

    def remove_pod(self, name: str, now: float) -> None:
        """The pod is gone: the requests it held are retried by their clients on the other pods."""
        pod = self.pods.pop(name, None)
        if pod is None:
            return
        engine = pod.engine
        held = [request for _, request in engine.pending] + [seq.req for seq in engine.waiting]
        held += [seq.req for seq in engine.running.values()]
        engine.abort_all(now)
        for request in sorted(held, key=lambda r: r.arrival_s):
            self._route(request, now)

    def scale_to(self, replicas: int, now: float) -> None:
        """Add pods, or remove starting pods first, then the newest (as the Deployment controller does)."""
        while len(self.pods) < replicas:
            self.add_pod(now)
        if len(self.pods) > max(replicas, 0):
            order = sorted(self.pods.values(), key=lambda p: (p.serving(now), -p.created_s))
            for pod in order[: len(self.pods) - max(replicas, 0)]:
                self.remove_pod(pod.name, now)

    def serving_pods(self, now: float) -> list[SimPod]:
        return [pod for pod in self.pods.values() if pod.serving(now)]

    # ---- time ------------------------------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        """Arrivals in [self.now, now) routed as they come, every serving engine run to `now`, gauges published."""
        if now <= self.now:
            return
        start = self.now
        for request in self.source.arrivals(start, now):
            self._route(self._clip(request), request.arrival_s)
        self._flush_queue(now)
        for pod in self.pods.values():
            if pod.ready_at < now:
                pod.engine.advance(now)
                pod.engine.publish(start)
        self.now = now

    def _flush_queue(self, t: float) -> None:
        while self.queue and t - self.queue[0].arrival_s > TIMEOUT_S:
            self.queue.popleft()
        if self.queue and self.serving_pods(t):
            held, self.queue = self.queue, deque()
            for request in held:
                self._route(request, t)

    def _clip(self, request: Request) -> Request:
        """Trim the output so prompt + output fit the context (a client's max_tokens would)."""
        limit = min(self.hardware.max_model_len, self.hardware.kv_cache_tokens)
        prompt = min(request.prompt_tokens, max(limit - 1, 1))
        output = max(1, min(request.output_tokens, limit - prompt))
        if (prompt, output) == (request.prompt_tokens, request.output_tokens):
            return request
        return Request(request.arrival_s, prompt, output)

    def _route(self, request: Request, t: float) -> None:
        serving = self.serving_pods(t)
        if not serving:
            self.queue.append(request)
            return
        for pod in serving:
            pod.engine.advance(t)
        offset = self._rr % len(serving)  # ties go round the pods
        self._rr += 1
        pod = min(serving[offset:] + serving[:offset], key=lambda p: p.engine.in_flight)
        if id(request) in self._tracked:
            self._tracked[id(request)] = pod.name
        pod.engine.submit(request, t)

    # ---- single requests (the HTTP completion APIs) ----------------------------------------------------------
    def submit(self, prompt_tokens: int, output_tokens: int, now: float) -> Request:
        """A client request arriving now; follow it with `progress`."""
        self.advance(now)
        request = self._clip(Request(now, max(prompt_tokens, 1), max(output_tokens, 1)))
        self._tracked[id(request)] = ""
        self._route(request, now)
        return request

    def progress(self, request: Request) -> Progress:
        """Tokens the client of a `submit`ted request has by its engine's clock; done (and forgotten) once its pod
        no longer holds it, at that pod's latest finish."""
        if any(r is request for r in self.queue):
            return Progress(0, self.now, False)
        pod = self.pods.get(self._tracked.get(id(request), ""))
        if pod is not None:
            engine = pod.engine
            for seq in engine.running.values():
                if seq.req is request:
                    tokens = seq.generated + (engine.counter - seq.d0 if seq.decoding else 0)
                    return Progress(tokens, engine.now, False)
            if any(seq.req is request for seq in engine.waiting) or any(r is request for _, r in engine.pending):
                return Progress(0, engine.now, False)
        self._tracked.pop(id(request), None)
        return Progress(request.output_tokens, pod.engine.last_finish_s if pod else self.now, True)

    # ---- outside view ----------------------------------------------------------------------------------------
    def samples(self, now: float) -> list[SampleTuple]:
        """Every serving pod's series with the target labels the PodMonitor adds (namespace, llmdeployment, pod)."""
        out: list[SampleTuple] = []
        for pod in self.serving_pods(now):
            extra = {"namespace": self.namespace, "llmdeployment": self.name, "pod": pod.name}
            out.extend((name, {**labels, **extra}, value) for name, labels, value in pod.metrics.samples())
        return out

    def step_ms(self, now: float) -> float:
        """The decode step a token sees now on the least loaded serving pod (one sequence when idle)."""
        engines = [pod.engine for pod in self.serving_pods(now)]
        if not engines:
            return self.hardware.decode_step_s(1, self.source.prompt_tokens(now)) * 1000.0
        engine = min(engines, key=lambda e: e.in_flight)
        batch = max(engine.batch, 1)
        kv = engine.kv_decode if engine.batch else self.source.prompt_tokens(now)
        return self.hardware.decode_step_s(batch, kv) * 1000.0

    def state(self, now: float) -> dict[str, object]:
        serving = self.serving_pods(now)
        return {
            "namespace": self.namespace,
            "name": self.name,
            "engine": self.engine,
            "rps": round(self.source.rps(now), 4),
            "meanOutputTokens": round(self.source.output_tokens(now), 2),
            "pods": len(self.pods),
            "serving": len(serving),
            "itlMs": round(self.step_ms(now), 3),
            "running": sum(pod.engine.num_running for pod in serving),
            "waiting": sum(pod.engine.num_waiting for pod in serving) + len(self.queue),
        }
