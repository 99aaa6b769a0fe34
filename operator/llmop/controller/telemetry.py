"""The operator's own Prometheus metrics (prometheus_client), labelled by namespace and llmdeployment."""

from __future__ import annotations

import contextlib
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

_LABELS = ("namespace", "llmdeployment")

DESIRED_REPLICAS = Gauge("llmop_desired_replicas", "Replicas the autoscaler wants", _LABELS)
READY_REPLICAS = Gauge("llmop_ready_replicas", "Ready engine replicas", _LABELS)
OBSERVED_LATENCY = Gauge(
    "llmop_observed_decode_latency_ms", "Observed decode latency (TPOT) at the SLO percentile", _LABELS
)
SLO_TARGET = Gauge("llmop_slo_target_ms", "Decode latency SLO target", _LABELS)
SLO_PERCENTILE = Gauge("llmop_slo_percentile", "Percentile of the decode latency SLO", _LABELS)
METRICS_AVAILABLE = Gauge("llmop_metrics_available", "1 when the autoscaler has usable metrics", _LABELS)
SCALE_DECISIONS = Counter("llmop_scale_decisions", "Scaling decisions by direction", (*_LABELS, "direction"))
RECONCILE_DURATION = Histogram(
    "llmop_reconcile_duration_seconds",
    "Duration of one reconcile pass",
    _LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PLAN_REFUSALS = Counter("llmop_plan_refusals", "Reconciles that refused the spec", _LABELS)


def record_replicas(namespace: str, name: str, status: dict[str, Any]) -> None:
    if isinstance(status.get("readyReplicas"), int):
        READY_REPLICAS.labels(namespace, name).set(status["readyReplicas"])
    if isinstance(status.get("desiredReplicas"), int):
        DESIRED_REPLICAS.labels(namespace, name).set(status["desiredReplicas"])


def forget(namespace: str, name: str) -> None:
    """Drop the series of a deleted LLMDeployment."""
    for gauge in (DESIRED_REPLICAS, READY_REPLICAS, OBSERVED_LATENCY, SLO_TARGET, SLO_PERCENTILE, METRICS_AVAILABLE):
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, name)
