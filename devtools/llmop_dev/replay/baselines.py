"""Competent HPA and KEDA baselines, configured as their docs show, replayed through the emulated Prometheus."""

# KEDA facts (kedacore/keda, main in 2026):
# * A ScaledObject becomes an HPA with one External metric per trigger; metricType defaults to AverageValue with
#   target = threshold (pkg/scalers/scaler.go GetMetricTargetType, GetMetricTargetMili), so the HPA computes
#   ceil(total / threshold) against status.currentReplicas (GetExternalPerPodMetricReplicas). Values and targets are
#   quantities printed with "%.3f" (scaler.go quantityFromFloat64: NaN, Inf and negatives become 0).
# * The HPA asks KEDA's metrics server on every sync (15 s) and KEDA queries the scaler live for each request
#   unless the trigger sets `useCachedMetrics: true`; only then does it answer from the record stored at the last
#   poll (pkg/scaling/scale_handler.go GetScaledObjectMetrics, TriggerUseCachedMetrics). pollingInterval (default
#   30 s, apis/keda/v1alpha1/withtriggers_types.go) paces the operator loop: activation and scaling 0 <-> 1.
# * cooldownPeriod (default 300 s, pkg/scaling/executor/scale_executor.go) only governs scaling to 0 after the last
#   active poll (scale_scaledobjects.go); with minReplicaCount >= 1 scaling is all the HPA's. The HPA's min is
#   max(1, minReplicaCount) (scaledobject_types.go GetHPAMinReplicas).
# * Without advanced.horizontalPodAutoscalerConfig.behavior KEDA creates the HPA with behavior nil
#   (controllers/keda/hpa.go), i.e. the HPA's legacy path; the vLLM and KServe KEDA guides set none.
# * Prometheus scaler (pkg/scalers/prometheus_scaler.go ExecutePromQuery): an empty result is 0 when
#   ignoreNullValues (default true), else an error; more than one element is an error ("returned multiple
#   elements"), hence the sum; NaN/Inf likewise 0 or an error. Active when value > activationThreshold (default 0).
# HPA side: hpa.py. prometheus-adapter answers a Pods metric from a query like
#   sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>), restricted to the pods the HPA lists.

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from llmop_dev.replay.hpa import (
    SYNC_S,
    Behavior,
    ExternalAverageValue,
    Hpa,
    MetricError,
    ObjectValue,
    PodsAverageValue,
    prometheus_value,
)
from llmop_dev.replay.types import Controller, View


@dataclass(frozen=True)
class EngineMetrics:
    requests: str  # counter of requests
    running: str  # gauge: sequences in the running batch
    waiting: str  # gauge: requests queued for admission
    tpot_bucket: str  # histogram buckets of per-token latency


# Request counter: the gateway's per-pod arrival counter (gateway_requests_total: what an ingress in front of the
# pods counts per upstream, as Istio's istio_requests_total or Envoy's upstream_rq_total do). A competent
# request-rate HPA scales on arrivals there: vLLM has no arrival counter, and a completion counter
# (vllm:request_success_total, tgi_request_success) saturates at what an overloaded pod finishes, so an HPA on it
# never sees the demand it is missing (tried: it held one 70B replica through a 5x overload).
# Per-token latency: vLLM's ITL histogram (the decode-SLO signal, engines.md); TGI's per-request mean time per token.
ENGINES: dict[str, EngineMetrics] = {
    "vllm": EngineMetrics(
        "gateway_requests_total",
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:inter_token_latency_seconds_bucket",
    ),
    "tgi": EngineMetrics(
        "gateway_requests_total",
        "tgi_batch_current_size",
        "tgi_queue_size",
        "tgi_request_mean_time_per_token_duration_bucket",
    ),
}


@dataclass(frozen=True, kw_only=True)
class BaselineParams:
    """What a baseline is configured from: the deployment, its bounds and the plan's per-replica capacity."""

    min_replicas: int
    max_replicas: int
    capacity_rps: float  # requests/s one replica serves within the SLO (the plan's number)
    capacity_concurrency: float  # requests in flight per replica at that load
    engine: Literal["vllm", "tgi"] = "vllm"
    namespace: str = "bench"
    deployment: str = "bench"
    fraction: float = 0.8  # --baseline-target: the share of capacity each replica is targeted to carry
    target_ms: float = 50.0  # the decode-latency SLO (hpa-tpot)
    percentile: float = 95.0
    waiting_s: float = 1.0  # keda-waiting: seconds of queued work per replica tolerated before adding one
    rate_window: str = "1m"

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {sorted(ENGINES)}, not {self.engine!r}")
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], not {self.fraction}")
        if not 0 <= self.min_replicas <= self.max_replicas or self.max_replicas < 1:
            raise ValueError(f"bad replica bounds {self.min_replicas}..{self.max_replicas}")

    @property
    def hpa_min(self) -> int:
        """An HPA's minReplicas is at least 1 (0 needs the alpha HPAScaleToZero gate); KEDA does 1 <-> 0 itself."""
        return max(1, self.min_replicas)

    @property
    def metrics(self) -> EngineMetrics:
        return ENGINES[self.engine]

    @property
    def selector(self) -> str:
        return f'{{namespace="{self.namespace}",llmdeployment="{self.deployment}"}}'


def per_pod(expr: str) -> str:
    return f"sum by (pod) ({expr})"


def hpa_rps(name: str, p: BaselineParams) -> Hpa:
    """Per-pod request rate, AverageValue = fraction x capacity_rps."""
    expr = per_pod(f"rate({p.metrics.requests}{p.selector}[{p.rate_window}])")
    return Hpa(name, PodsAverageValue((expr,), p.fraction * p.capacity_rps), p.hpa_min, p.max_replicas)


def hpa_concurrency(name: str, p: BaselineParams) -> Hpa:
    """Per-pod running + waiting, AverageValue = fraction x capacity_concurrency."""
    exprs = (per_pod(f"{p.metrics.running}{p.selector}"), per_pod(f"{p.metrics.waiting}{p.selector}"))
    return Hpa(name, PodsAverageValue(exprs, p.fraction * p.capacity_concurrency), p.hpa_min, p.max_replicas)


def hpa_tpot(name: str, p: BaselineParams) -> Hpa:
    """The deployment's p-quantile per-token latency as an Object/External Value metric, target = the SLO. Kept to show
    the wrong model: latency is not proportional to replicas, so ceil(latency / target x ready) over- or under-shoots,
    and below the knee of the latency curve it recommends scaling down to the bone."""
    q = f"{p.percentile / 100:g}"
    expr = f"histogram_quantile({q}, sum by (le) (rate({p.metrics.tpot_bucket}{p.selector}[2m])))"
    return Hpa(name, ObjectValue(prometheus_value(expr), p.target_ms / 1000.0), p.hpa_min, p.max_replicas)


def keda_milli(value: float) -> int:
    """scaler.go quantityFromFloat64: resource.MustParse(fmt.Sprintf("%.3f", value)), NaN/Inf/negative as 0."""
    if not math.isfinite(value) or value < 0:
        return 0
    return round(float(f"{value:.3f}") * 1000)


@dataclass
class Keda:
    """A ScaledObject with one prometheus trigger (metricType AverageValue) and the HPA KEDA creates for it."""

    name: str
    expr: str
    threshold: float
    min_replicas: int
    max_replicas: int
    polling_s: float = 30.0
    cooldown_s: float = 300.0  # to zero only
    activation_threshold: float = 0.0
    use_cached_metrics: bool = False
    ignore_null_values: bool = True
    behavior: Behavior | None = None  # advanced.horizontalPodAutoscalerConfig.behavior; unset in the docs' examples
    hpa: Hpa = field(init=False)
    interval_s: float = field(init=False)
    queries: int = field(init=False, default=0)
    _polled_at: float = field(init=False, default=-math.inf)
    _record: float | MetricError | None = field(init=False, default=None)
    _last_active: float | None = field(init=False, default=None)
    _synced_at: float = field(init=False, default=-math.inf)

    def __post_init__(self) -> None:
        metric = ExternalAverageValue(self._metric, self.threshold, keda_milli)
        self.hpa = Hpa(self.name, metric, max(1, self.min_replicas), self.max_replicas, self.behavior)
        self.interval_s = min(SYNC_S, self.polling_s)

    def scale(self, view: View) -> float:
        """prometheus_scaler.go ExecutePromQuery."""
        self.queries += 1
        samples = view.query(self.expr)
        if len(samples) > 1:
            raise MetricError(f"prometheus query {self.expr} returned multiple elements")
        value = float(samples[0]["value"][1]) if samples else math.nan
        if math.isfinite(value):
            return value
        if self.ignore_null_values:
            return 0.0
        raise MetricError("the result is empty" if not samples else f"prometheus query returns {value}")

    def _metric(self, view: View) -> float:
        """What the HPA gets from KEDA's metrics server: the poll's record with useCachedMetrics, else a live query."""
        if self.use_cached_metrics and self._record is not None:
            if isinstance(self._record, MetricError):
                raise self._record
            return self._record
        return self.scale(view)

    def desired(self, view: View) -> int:
        current = view.current
        if view.now - self._polled_at >= self.polling_s - 1e-9:
            self._polled_at = view.now
            try:
                value: float | MetricError = self.scale(view)
            except MetricError as error:
                value = error
            self._record = value if self.use_cached_metrics else None
            active = isinstance(value, float) and value > self.activation_threshold
            if active:
                self._last_active = view.now
            if active and current == 0:
                return max(1, self.min_replicas)  # scaleFromZeroOrIdle
            idle = not active and not isinstance(value, MetricError) and self.min_replicas == 0 and current > 0
            # scaleToZeroOrIdle: cooldownPeriod after the last active poll (never active: initialCooldownPeriod 0)
            if idle and (self._last_active is None or self._last_active + self.cooldown_s < view.now):
                return 0
        if current == 0 or view.now - self._synced_at < SYNC_S - 1e-9:
            return current  # the HPA does nothing at 0 replicas, and syncs every 15 s
        self._synced_at = view.now
        return self.hpa.desired(view)


def keda_running(name: str, p: BaselineParams) -> Keda:
    """KServe's KEDA example for vLLM (vllm:num_requests_running), summed so it is one element, threshold per replica
    = fraction x capacity_concurrency."""
    expr = f"sum by (llmdeployment) ({p.metrics.running}{p.selector})"
    return Keda(name, expr, p.fraction * p.capacity_concurrency, p.min_replicas, p.max_replicas)


def keda_waiting(name: str, p: BaselineParams) -> Keda:
    """Queue length (the vLLM production-stack KEDA guide's metric). Threshold from Little's law: a request queued
    behind W others at a replica serving capacity_rps waits about W / capacity_rps, so W = capacity_rps x waiting_s
    (default 1 s of queueing, before TTFT suffers) per replica, at least 1. The AverageValue math sizes the fleet
    from the queue alone: with no queue it recommends min replicas, which is what this baseline exposes."""
    expr = f"sum by (llmdeployment) ({p.metrics.waiting}{p.selector})"
    threshold = max(1.0, p.capacity_rps * p.waiting_s)
    return Keda(name, expr, threshold, p.min_replicas, p.max_replicas)


FACTORIES = {
    "hpa-rps": hpa_rps,
    "hpa-concurrency": hpa_concurrency,
    "hpa-tpot": hpa_tpot,
    "keda-running": keda_running,
    "keda-waiting": keda_waiting,
}
ALIASES = {"hpa": ("hpa-rps", 0.8), "keda": ("keda-running", 0.8)}
BASELINES: tuple[str, ...] = (*FACTORIES, *ALIASES)


def make_baseline(name: str, **params: object) -> Controller:
    """The named baseline from BaselineParams fields; an alias fixes its fraction at 0.8."""
    p = BaselineParams(**params)  # type: ignore[arg-type]
    if name in ALIASES:
        base, fraction = ALIASES[name]
        return FACTORIES[base](name, replace(p, fraction=fraction))
    if name not in FACTORIES:
        raise ValueError(f"unknown baseline {name!r}; one of {', '.join(BASELINES)}")
    return FACTORIES[name](name, p)
