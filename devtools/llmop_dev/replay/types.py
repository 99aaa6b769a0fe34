"""The replay's shared vocabulary: requests, workloads, per-pod metric recorders, scrape targets, controller views.

The replay is the honest autoscaling benchmark. Its physics (engine.py, fleet.py, hardware.py) is its own: it must
never import llmop.plan.latency, llmop.autoscale.capacity or llmop.autoscale.policy (the things it judges). It may
read deployment facts (GPU type, tensor-parallel size, weight bytes, KV-cache tokens, engine flags) from a Plan
and hardware facts from llmop.catalog, the way a real engine is configured by the rendered Deployment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Request:
    """One client request: when it arrives (s from the trace start), its prompt and output lengths (tokens)."""

    arrival_s: float
    prompt_tokens: int
    output_tokens: int


class Workload(Protocol):
    """A trace turned into requests (traces.py). `intensity`/`mean_*` are the ground truth the references use."""

    name: str
    duration_s: float
    requests: Sequence[Request]  # sorted by arrival_s

    def intensity(self, t: float) -> float:
        """True arrival rate (requests/s) at time t (the generating rate for rate traces; a centred 60 s count
        for request-level traces)."""
        ...

    def mean_output_tokens(self, t: float) -> float: ...

    def mean_prompt_tokens(self, t: float) -> float: ...


class PodMetrics(Protocol):
    """What one engine pod records, in the engine's own metric families (exporter.py implements vLLM and TGI)."""

    def observe_itl(self, value_s: float, count: float) -> None:
        """`count` output tokens (after each request's first) arrived `value_s` after the previous token."""
        ...

    def observe_ttft(self, value_s: float) -> None: ...

    def observe_step(self, kind: str, duration_s: float, batch: int, count: int = 1) -> None:
        """`count` engine steps of `duration_s` each: kind 'prefill' (it admitted prompt tokens) or 'decode';
        `batch` sequences in each. The engine aggregates a run of identical decode steps into one call."""
        ...

    def observe_finished(
        self, prompt_tokens: int, output_tokens: int, e2e_s: float, queue_s: float, ttft_s: float | None = None
    ) -> None:
        """One request done: `e2e_s` from arrival, `queue_s` waiting, `ttft_s` arrival to first token if known."""
        ...

    def set_state(self, running: int, waiting: int, kv_usage: float) -> None: ...

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        """Every series as (sample name, labels, value), as a scrape of the pod's /metrics would give."""
        ...


class Scrapeable(Protocol):
    def samples(self) -> list[tuple[str, dict[str, str], float]]: ...


@dataclass(frozen=True)
class ScrapeTarget:
    """One pod as Prometheus sees it: its target labels (namespace, llmdeployment, pod) and its metrics (an
    engine's PodMetrics, or anything else with `samples()`, such as the gateway's per-pod counter)."""

    labels: dict[str, str]
    metrics: Scrapeable


QueryRunner = Callable[[str], list[dict[str, Any]]]  # PromQL -> prometheus-api-client custom_query result


@dataclass(frozen=True)
class PodView:
    """One pod of the deployment as the Kubernetes API shows it."""

    name: str
    ready: bool
    created_s: float


@dataclass(frozen=True)
class View:
    """What a controller may look at when it decides (references also hold the Workload and the hardware)."""

    now: float
    pods: tuple[PodView, ...]  # every pod that exists (starting, ready; not the terminating ones)
    query: QueryRunner  # the emulated Prometheus at `now`
    namespace: str = "bench"
    deployment: str = "bench"

    @property
    def current(self) -> int:
        return len(self.pods)

    @property
    def ready(self) -> int:
        return sum(pod.ready for pod in self.pods)


class Controller(Protocol):
    """A scaling algorithm replayed against the fleet: called every `interval_s`, returns the replica count."""

    name: str
    interval_s: float

    def desired(self, view: View) -> int: ...
