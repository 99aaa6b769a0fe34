"""The Kubernetes HPA algorithm as upstream runs it (replica calculator, stabilization, policies) over one metric."""

# Upstream, kubernetes/kubernetes pkg/controller/podautoscaler:
#   replica_calculator.go  Tolerances.isWithin, calcPlainMetricReplicas, groupPods, getUsageRatioReplicaCount,
#                          GetExternalPerPodMetricReplicas; metrics/utilization.go GetMetricUsageRatio.
#   horizontal.go          reconcileAutoscaler, normalizeDesiredReplicas (no `behavior`), stabilizeRecommendation,
#                          convertDesiredReplicasWithRules/calculateScaleUpLimit (max(2 x current, 4)),
#                          normalizeDesiredReplicasWithBehaviors, stabilizeRecommendationWithBehaviors,
#                          convertDesiredReplicasWithBehaviorRate, calculateScale{Up,Down}Limit*, storeScaleEvent.
#   pkg/apis/autoscaling/v2/defaults.go: default policies are filled in only when `spec.behavior` is set; without it
#                          the controller takes the legacy path above (kube-controller-manager flags: sync period 15 s,
#                          tolerance 0.1, downscale stabilization 5 min).
# Metric values travel as resource.Quantity and are compared in milli-units (int64), as the HPA does.

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from llmop_dev.replay.types import PodView, View

SYNC_S = 15.0  # --horizontal-pod-autoscaler-sync-period
TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance
DOWNSCALE_STABILIZATION_S = 300.0  # --horizontal-pod-autoscaler-downscale-stabilization (legacy path)
SCALE_UP_LIMIT_FACTOR = 2.0  # horizontal.go, legacy path only
SCALE_UP_LIMIT_MINIMUM = 4.0


class MetricError(Exception):
    """The HPA could not compute a recommendation this sync (FailedGetPodsMetric & co.): it does not scale."""


@dataclass(frozen=True)
class Policy:
    kind: Literal["Pods", "Percent"]
    value: int
    period_s: float


@dataclass(frozen=True)
class Rules:
    stabilization_s: float
    policies: tuple[Policy, ...]
    select: Literal["Max", "Min", "Disabled"] = "Max"


@dataclass(frozen=True)
class Behavior:
    """`spec.behavior`; the defaults are those GenerateHPAScaleUpRules/GenerateHPAScaleDownRules fill in."""

    scale_up: Rules = Rules(0.0, (Policy("Pods", 4, 15.0), Policy("Percent", 100, 15.0)))
    scale_down: Rules = Rules(300.0, (Policy("Percent", 100, 15.0),))


DEFAULT_BEHAVIOR = Behavior()


def milli(value: float) -> int:
    """A float as prometheus-adapter hands it over: resource.NewMilliQuantity(int64(value*1000)) (truncation)."""
    return int(value * 1000.0)


def within(ratio: float, tolerance: float) -> bool:
    """Tolerances.isWithin: (1 - down) <= ratio <= (1 + up)."""
    return (1.0 - tolerance) <= ratio <= (1.0 + tolerance)


def usage_ratio(metrics: dict[str, int], target: int) -> float:
    """GetMetricUsageRatio: the integer mean of the milli-values over the target."""
    return float(sum(metrics.values()) // len(metrics)) / float(target)


def plain_metric_replicas(
    values: dict[str, int], pods: Sequence[PodView], current: int, target: int, tolerance: float, pending: bool
) -> int:
    """calcPlainMetricReplicas for a Pods (or Object AverageValue per pod) metric.

    groupPods: a Pending pod is "unready" (its sample dropped; 0 on a scale-up, left out on a scale-down); a Running pod
    without a sample is "missing" (0 on a scale-up, exactly the target on a scale-down); a Running pod with a sample
    counts whether or not it is Ready (readiness is looked at only for the CPU resource). A View has no pod phase: with
    `pending` the not-ready pods are taken as Pending (image pull), otherwise as Running and loading the model.
    """
    metrics: dict[str, int] = {}
    unready: set[str] = set()
    missing: set[str] = set()
    for pod in pods:
        if pending and not pod.ready:
            unready.add(pod.name)
        elif pod.name not in values:
            missing.add(pod.name)
        else:
            metrics[pod.name] = values[pod.name]
    ready_count = len(metrics)
    if not metrics:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    ratio = usage_ratio(metrics, target)
    up_with_unready = bool(unready) and ratio > 1.0
    if not up_with_unready and not missing:
        return current if within(ratio, tolerance) else math.ceil(ratio * ready_count)
    if missing and ratio < 1.0:
        metrics.update(dict.fromkeys(missing, target))
    elif missing and ratio > 1.0:
        metrics.update(dict.fromkeys(missing, 0))
    if up_with_unready:
        metrics.update(dict.fromkeys(unready, 0))
    new_ratio = usage_ratio(metrics, target)
    if within(new_ratio, tolerance) or (ratio < 1.0 < new_ratio) or (new_ratio < 1.0 < ratio):
        return current
    replicas = math.ceil(new_ratio * len(metrics))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current
    return replicas


Reader = Callable[[View], float]  # one deployment-wide value (Object or External metric); raises MetricError


def prometheus_pods(view: View, expr: str) -> dict[str, float]:
    """prometheus-adapter for a Pods metric: the `pod`-labelled samples of `expr`, for the pods the HPA lists."""
    names = {pod.name for pod in view.pods}
    values: dict[str, float] = {}
    for sample in view.query(expr):
        pod = sample["metric"].get("pod")
        value = float(sample["value"][1])
        if pod in names and math.isfinite(value):
            values[pod] = value
    return values


def prometheus_value(expr: str) -> Reader:
    """prometheus-adapter for an Object/External metric: the sum of the samples; none (or NaN) means unavailable."""

    def read(view: View) -> float:
        samples = [float(sample["value"][1]) for sample in view.query(expr)]
        if not samples or not all(math.isfinite(value) for value in samples):
            raise MetricError(f"no value for {expr}")
        return sum(samples)

    return read


@dataclass
class PodsAverageValue:
    """`type: Pods` with `target.type: AverageValue`: per-pod samples against a per-pod target. Two or more queries
    stand for the adapter query `A + B`: PromQL's one-to-one `+` keeps the pods present in every part (the emulated
    Prometheus has no `+`, so the parts are queried one by one and added here)."""

    exprs: tuple[str, ...]
    target: float
    pending: bool = False

    def replicas(self, view: View, tolerance: float) -> int:
        parts = [prometheus_pods(view, expr) for expr in self.exprs]
        pods = set.intersection(*(set(part) for part in parts))
        values = {pod: milli(sum(part[pod] for part in parts)) for pod in pods}
        return plain_metric_replicas(values, view.pods, view.current, milli(self.target), tolerance, self.pending)


@dataclass
class ObjectValue:
    """`type: Object`/`External` with `target.type: Value`: getUsageRatioReplicaCount, ratio x Ready pods."""

    read: Reader
    target: float

    def replicas(self, view: View, tolerance: float) -> int:
        ratio = float(milli(self.read(view))) / float(milli(self.target))
        if view.current == 0:
            return math.ceil(ratio)
        return view.current if within(ratio, tolerance) else math.ceil(ratio * view.ready)


@dataclass
class ExternalAverageValue:
    """`type: External` with `target.type: AverageValue` (what KEDA creates): GetExternalPerPodMetricReplicas,
    ceil(total / target), against status.currentReplicas (every pod, ready or not)."""

    read: Reader
    target: float
    to_milli: Callable[[float], int] = milli

    def replicas(self, view: View, tolerance: float) -> int:
        usage, target = self.to_milli(self.read(view)), self.to_milli(self.target)
        ratio = usage / (target * view.current) if view.current else math.inf
        return view.current if within(ratio, tolerance) else math.ceil(usage / target)


@dataclass
class Hpa:
    """One HorizontalPodAutoscaler with one metric, synced every 15 s. `behavior=None` is an HPA without
    `spec.behavior` (legacy path: up to max(2 x current, 4) per sync, 300 s down-stabilization, no down rate limit)."""

    name: str
    metric: Any  # PodsAverageValue | ObjectValue | ExternalAverageValue
    min_replicas: int
    max_replicas: int
    behavior: Behavior | None = DEFAULT_BEHAVIOR
    tolerance: float = TOLERANCE
    interval_s: float = SYNC_S
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    up_events: list[tuple[float, int]] = field(default_factory=list)
    down_events: list[tuple[float, int]] = field(default_factory=list)
    reasons: list[tuple[float, str]] = field(default_factory=list)

    def desired(self, view: View) -> int:
        """reconcileAutoscaler: bounds first, then the metric's recommendation, stabilized and rate-limited."""
        current = view.current
        if current == 0 and self.min_replicas != 0:
            return 0  # scale.spec.replicas == 0: autoscaling is disabled
        if current > self.max_replicas:
            desired = self.max_replicas
        elif current < self.min_replicas:
            desired = self.min_replicas
        else:
            try:
                proposed = self.metric.replicas(view, self.tolerance)
            except MetricError as error:
                self.reasons.append((view.now, f"FailedGetMetric: {error}"))
                return current
            if self.behavior is None:
                desired = self._legacy(view.now, current, proposed)
            else:
                desired = self._with_behavior(view.now, current, proposed, self.behavior)
        if desired != current:
            self.reasons.append((view.now, f"{current} -> {desired}"))
            if self.behavior is not None:  # storeScaleEvent keeps events only for an HPA with behavior
                events = self.up_events if desired > current else self.down_events
                events.append((view.now, abs(desired - current)))
        if self.behavior is not None:  # markScaleEventsOutdated: older than the longest policy period
            rules = (self.behavior.scale_up, self.behavior.scale_down)
            longest = max((p.period_s for r in rules for p in r.policies), default=0.0)
            self.up_events = [(t, n) for t, n in self.up_events if t > view.now - longest]
            self.down_events = [(t, n) for t, n in self.down_events if t > view.now - longest]
        return desired

    def _legacy(self, now: float, current: int, proposed: int) -> int:
        """normalizeDesiredReplicas: stabilizeRecommendation (samples not Before the cutoff) then the hard limits."""
        cutoff = now - DOWNSCALE_STABILIZATION_S
        self.recommendations = [(t, r) for t, r in self.recommendations if t >= cutoff]
        stabilized = max([proposed, *(r for _, r in self.recommendations)])
        self.recommendations.append((now, proposed))
        scale_up_limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
        if stabilized < self.min_replicas:
            return self.min_replicas
        return min(stabilized, self.max_replicas, scale_up_limit)

    def _with_behavior(self, now: float, current: int, proposed: int, behavior: Behavior) -> int:
        """stabilizeRecommendationWithBehaviors (samples After the cutoffs), convertDesiredReplicasWithBehaviorRate."""
        up_cutoff = now - behavior.scale_up.stabilization_s
        down_cutoff = now - behavior.scale_down.stabilization_s
        up, down = proposed, proposed
        for t, r in self.recommendations:
            if t > up_cutoff:
                up = min(up, r)
            if t > down_cutoff:
                down = max(down, r)
        self.recommendations = [(t, r) for t, r in self.recommendations if t > min(up_cutoff, down_cutoff)]
        self.recommendations.append((now, proposed))
        desired = min(max(current, up), down)
        if desired > current:
            limit = max(current, self._limit(now, current, behavior.scale_up, up=True))
            return min(desired, self.max_replicas, limit)
        if desired < current:
            limit = min(current, self._limit(now, current, behavior.scale_down, up=False))
            return max(desired, self.min_replicas, limit)
        return desired

    def _limit(self, now: float, current: int, rules: Rules, up: bool) -> int:
        """calculateScaleUpLimitWithScalingRules / calculateScaleDownLimitWithBehaviors."""
        if rules.select == "Disabled":
            return current
        proposals: list[int] = []
        for policy in rules.policies:
            added = sum(n for t, n in self.up_events if t > now - policy.period_s)
            deleted = sum(n for t, n in self.down_events if t > now - policy.period_s)
            start = current - added + deleted
            if policy.kind == "Pods":
                proposals.append(start + policy.value if up else start - policy.value)
            elif up:
                proposals.append(math.ceil(start * (1 + policy.value / 100)))
            else:
                proposals.append(int(start * (1 - policy.value / 100)))
        most = rules.select == "Max"  # the policy allowing the largest change
        return (max(proposals) if most else min(proposals)) if up else (min(proposals) if most else max(proposals))
