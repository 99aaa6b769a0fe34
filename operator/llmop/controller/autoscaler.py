"""Autoscaler shell: read metrics, ask the pure policy, record the decision in status. No decisions here."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from llmop.api.spec import duration_seconds
from llmop.api.status import ConditionType, get_condition, now_rfc3339, set_condition
from llmop.autoscale.metrics import MetricsSource, Observation, PrometheusMetrics
from llmop.autoscale.policy import Decision, PolicyConfig, PolicyState, decide
from llmop.controller import metrics
from llmop.controller.kube import Kube
from llmop.controller.settings import OperatorConfig
from llmop.controller.status import EventIntent, status_changed
from llmop.plan.parse import parse_spec
from llmop.plan.planner import plan
from llmop.plan.types import Plan, PlanErrors

log = logging.getLogger("llmop.autoscaler")

Locker = Callable[[str, str], AbstractContextManager[None]]


def decision_status(
    current: dict[str, Any], decision: Decision, obs: Observation, replicas: int, generation: int | None, now: str
) -> tuple[dict[str, Any], list[EventIntent]]:
    """Status fields and events for one decision (pure)."""
    conditions = list(current.get("conditions") or [])
    events: list[EventIntent] = []
    previous_metrics = get_condition(conditions, ConditionType.METRICS_AVAILABLE)
    if decision.metrics_available:
        conditions = set_condition(
            conditions,
            ConditionType.METRICS_AVAILABLE,
            True,
            "MetricsAvailable",
            f"p{obs.percentile:g} TPOT {obs.latency_text()} from {obs.samples:.0f} samples",
            generation,
            now,
        )
    else:
        conditions = set_condition(
            conditions,
            ConditionType.METRICS_AVAILABLE,
            False,
            "MetricsUnavailable",
            decision.metrics_reason,
            generation,
            now,
        )
        if not previous_metrics or previous_metrics.get("status") != "False":
            events.append(
                EventIntent("Warning", "MetricsUnavailable", f"holding {replicas} replicas: {decision.metrics_reason}")
            )
    if decision.slo_met is None:
        conditions = set_condition(conditions, ConditionType.SLO_MET, None, "NoData", decision.reason, generation, now)
    else:
        conditions = set_condition(
            conditions,
            ConditionType.SLO_MET,
            decision.slo_met,
            "WithinSLO" if decision.slo_met else "SLOBreached",
            decision.reason,
            generation,
            now,
        )
    status: dict[str, Any] = {
        "conditions": conditions,
        "desiredReplicas": decision.desired,
        "autoscaler": decision.state.to_dict(),
    }
    if obs.latency_ms is not None:
        latency: dict[str, Any] = {
            "percentile": int(obs.percentile),
            "observedMs": round(obs.latency_ms, 2),
            "observedAt": now,
        }
        if int(obs.percentile) == 95:
            latency["p95Ms"] = round(obs.latency_ms, 2)
        status["decodeLatency"] = latency
    if decision.direction != "hold" and decision.desired != replicas:
        status["lastScale"] = {"at": now, "from": replicas, "to": decision.desired, "reason": decision.reason}
        events.append(EventIntent("Normal", "Scaled", decision.reason))
    return status, events


class Autoscaler:
    """One autoscaling pass per LLMDeployment per timer tick."""

    def __init__(
        self,
        kube: Kube,
        config: OperatorConfig,
        locked: Locker,
        source_for: Callable[[str], MetricsSource] | None = None,
    ) -> None:
        self.kube = kube
        self.config = config
        self.locked = locked
        self._sources: dict[str, MetricsSource] = {}
        self._source_for = source_for or (lambda url: PrometheusMetrics(url, config.prometheus_timeout_seconds))

    def _source(self, url: str) -> MetricsSource:
        if url not in self._sources:
            self._sources[url] = self._source_for(url)
        return self._sources[url]

    def step(self, body: dict[str, Any]) -> Decision | None:
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        spec = parse_spec(body.get("spec"))
        if isinstance(spec, PlanErrors):
            return None
        result = plan(spec, name, self.config.image_registry)
        slo = spec.slo.decode_latency
        if not isinstance(result, Plan) or not spec.autoscaling.enabled or slo is None:
            return None
        window = duration_seconds(slo.window)
        url = spec.autoscaling.prometheus_url or self.config.prometheus_url
        if url:
            obs = self._source(url).observe(
                namespace, name, result.engine, result.engine_version, slo.percentile, window
            )
        else:
            obs = Observation.failed(
                "no Prometheus URL: set the operator's --prometheus-url or spec.autoscaling.prometheusUrl",
                time.time(),
                slo.percentile,
            )
        policy = PolicyConfig.from_plan(
            result,
            slo.percentile,
            window,
            duration_seconds(spec.autoscaling.scale_up_stabilization),
            duration_seconds(spec.autoscaling.scale_down_stabilization),
        )
        with self.locked(namespace, name):
            fresh = self.kube.get_llmd(namespace, name)
            deployment = self.kube.get("Deployment", namespace, name)
            if fresh is None or deployment is None:
                return None
            current = fresh.get("status") or {}
            # Scale from the operator's own last decision, not from the Deployment's count: a hand edit or
            # another writer's spec.replicas is drift the reconciler reverts, never a new baseline to hold.
            recorded = current.get("desiredReplicas")
            if isinstance(recorded, int) and not isinstance(recorded, bool) and recorded >= 0:
                replicas = recorded
            else:
                replicas = int((deployment.get("spec") or {}).get("replicas") or 0)
            ready = int((deployment.get("status") or {}).get("readyReplicas") or 0)
            state = PolicyState.from_dict(current.get("autoscaler"))
            decision = decide(policy, state, obs, replicas, ready, time.time())
            status, events = decision_status(
                current, decision, obs, replicas, fresh["metadata"].get("generation"), now_rfc3339()
            )
            changed = status_changed(current, status)
            if changed:
                self.kube.patch_llmd_status(namespace, name, changed)
            for event in events:
                self.kube.post_event(fresh, event)
        metrics.SLO_TARGET.labels(namespace, name).set(slo.target_ms)
        metrics.SLO_PERCENTILE.labels(namespace, name).set(slo.percentile)
        metrics.METRICS_AVAILABLE.labels(namespace, name).set(1 if decision.metrics_available else 0)
        metrics.DESIRED_REPLICAS.labels(namespace, name).set(decision.desired)
        if obs.latency_ms is not None:
            metrics.OBSERVED_LATENCY.labels(namespace, name).set(obs.latency_ms)
        metrics.SCALE_DECISIONS.labels(namespace, name, decision.direction).inc()
        if decision.direction != "hold":
            log.info("%s/%s: %s", namespace, name, decision.reason)
        return decision
