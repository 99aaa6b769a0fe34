"""All simulated deployments, advanced in real time by a ticker thread; their /metrics text and load controls."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from llmop.plan.types import Plan
from llmop_dev.replay.exporter import render_openmetrics, render_text
from llmop_dev.replay.traces import RateWorkload, RequestWorkload
from llmop_dev.sim.deployment import DeploymentSim
from llmop_dev.sim.load import DEFAULT_PROMPT_TOKENS, LoadSource, RateSource, TraceSource

Key = tuple[str, str]


@dataclass(frozen=True)
class StaticDeployment:
    """A deployment for standalone mode (no cluster): its pods are created ready at start."""

    namespace: str
    name: str
    plan: Plan
    replicas: int = 1
    rps: float = 0.0
    output_tokens: float = 256.0
    prompt_tokens: float = DEFAULT_PROMPT_TOKENS
    startup_seconds: float | None = None


class Fleet:
    """Simulated deployments keyed by (namespace, name); every public method takes `lock`.

    New deployments (cluster mode) get `loads[key]` (rps, output tokens), else the `trace`, else `default_load`."""

    def __init__(self, tick_s: float = 0.25) -> None:
        self.tick_s = tick_s
        self.lock = threading.RLock()
        self.sims: dict[Key, DeploymentSim] = {}
        self.default_load: tuple[float, float] = (0.0, 256.0)
        self.loads: dict[Key, tuple[float, float]] = {}
        self.trace: RateWorkload | RequestWorkload | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def new_source(self, namespace: str, name: str, now: float) -> LoadSource:
        """The load a deployment starts with: its --load, else the --trace (from now), else --rps."""
        key = (namespace, name)
        if key not in self.loads and self.trace is not None:
            return TraceSource(self.trace, now)
        rps, tokens = self.loads.get(key, self.default_load)
        return RateSource(rps, tokens, seed=f"{namespace}/{name}")

    def add(self, spec: StaticDeployment, now: float | None = None, ready: bool = True) -> DeploymentSim:
        now = time.time() if now is None else now
        source = RateSource(spec.rps, spec.output_tokens, spec.prompt_tokens, seed=f"{spec.namespace}/{spec.name}")
        sim = DeploymentSim(spec.namespace, spec.name, spec.plan, source, spec.startup_seconds, now=now)
        for _ in range(spec.replicas):
            sim.add_pod(now, ready_at=now if ready else None)
        with self.lock:
            self.sims[(spec.namespace, spec.name)] = sim
        return sim

    def _advanced(self, namespace: str, name: str) -> tuple[DeploymentSim | None, float]:
        """The deployment's simulation brought up to now (call with the lock held), and now."""
        now = time.time()
        sim = self.sims.get((namespace, name))
        if sim is not None:
            sim.advance(now)
        return sim, now

    def set_load(self, namespace: str, name: str, rps: float, output_tokens: float | None = None,
                 prompt_tokens: float | None = None) -> bool:  # fmt: skip
        """Constant Poisson load from now on (replaces a trace)."""
        with self.lock:
            sim, now = self._advanced(namespace, name)
            if sim is None:
                return False
            source = sim.source
            if isinstance(source, RateSource):
                source.set(rps, output_tokens, prompt_tokens)
            else:
                sim.source = RateSource(rps, output_tokens or source.output_tokens(now),
                                        prompt_tokens or source.prompt_tokens(now), seed=sim.seed)  # fmt: skip
            return True

    def set_trace(self, namespace: str, name: str, workload: RateWorkload | RequestWorkload,
                  started: float | None = None) -> bool:  # fmt: skip
        with self.lock:
            sim, now = self._advanced(namespace, name)
            if sim is None:
                return False
            sim.source = TraceSource(workload, now if started is None else started)
            return True

    def advance(self, now: float) -> None:
        with self.lock:
            for sim in self.sims.values():
                sim.advance(now)

    def metrics_text(self, openmetrics: bool = False) -> str:
        """Every simulated pod's samples, as text 0.0.4 or (`openmetrics`) as vLLM's exporter escapes them."""
        now = time.time()
        with self.lock:
            for sim in self.sims.values():
                sim.advance(now)
            samples = [sample for sim in self.sims.values() for sample in sim.samples(now)]
        return render_openmetrics(samples) if openmetrics else render_text(samples)

    def state(self) -> list[dict[str, Any]]:
        now = time.time()
        with self.lock:
            return [sim.state(now) for sim in self.sims.values()]

    def find(self, namespace: str | None, name: str | None, model: str | None) -> DeploymentSim | None:
        with self.lock:
            if namespace and name:
                return self.sims.get((namespace, name))
            matches = [s for s in self.sims.values() if model in (None, "", s.name, s.plan.model_name)]
            return matches[0] if matches else None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="llmop-sim-ticker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            self.advance(time.time())

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
