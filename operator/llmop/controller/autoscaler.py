"""Autoscaler shell: read metrics, ask the pure policy, record the decision in status. No decisions here."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from llmop.api.status import ConditionType, get_condition, now_rfc3339, set_condition
from llmop.autoscale.fallback import ProbeCache, Prober, needs_probe, service_endpoint, with_probe
from llmop.autoscale.metrics import MetricsSource, Observation, PrometheusMetrics
from llmop.autoscale.policy import Decision, Direction, PolicyConfig, PolicyState, decide
from llmop.controller import metrics
from llmop.controller.kube import Kube
from llmop.controller.plans import PlanCache
from llmop.controller.settings import OperatorConfig
from llmop.controller.status import EventIntent, recorded_replicas, status_changed
from llmop.plan.types import Plan

log = logging.getLogger("llmop.autoscaler")

Locker = Callable[[str, str], AbstractContextManager[None]]


LATENCY_MOVE = 0.05  # decodeLatency is rewritten when the observed latency moves by more than this share (and 0.5 ms)


def _latency_moved(previous: Any, latency: dict[str, Any] | None) -> bool:
    if latency is None:
        return False
    if not isinstance(previous, dict) or previous.get("percentile") != latency.get("percentile"):
        return True
    old = previous.get("observedMs")
    if not isinstance(old, int | float) or isinstance(old, bool):
        return True
    return bool(abs(latency["observedMs"] - old) > max(0.5, LATENCY_MOVE * old))


def _metrics_condition(decision: Decision, obs: Observation) -> tuple[bool, str, str]:
    if not decision.metrics_available:
        # its own reason, so that the switch from "too few tokens" to "the probe failed" is a transition (written)
        return False, "ProbeFailed" if obs.source == "probe" else "MetricsUnavailable", decision.metrics_reason
    if obs.source == "probe":
        return True, "ActiveProbe", obs.note
    return True, "MetricsAvailable", f"p{obs.percentile:g} TPOT {obs.latency_text()} from {obs.samples:.0f} samples"


def decision_status(
    current: dict[str, Any],
    decision: Decision,
    obs: Observation,
    replicas: int,
    generation: int | None,
    now: str,
) -> tuple[dict[str, Any], list[EventIntent]]:
    """Status fields and events for one decision (pure).

    Steady state writes nothing: while nothing meaningful changes (condition status or reason, desired replicas,
    the latency by more than LATENCY_MOVE, the policy's memory), the previous messages and decodeLatency are kept,
    so the merge patch is empty. No periodic refresh either: at 500 objects a 60 s heartbeat alone would be
    8 writes/s. Freshness shows elsewhere: MetricsAvailable turns False as soon as data stops, and the operator's
    own metrics carry the latency of every tick. autoscaler.reportedAt says when the report was last written."""
    previous = list(current.get("conditions") or [])
    events: list[EventIntent] = []
    metrics_ok, metrics_reason, metrics_message = _metrics_condition(decision, obs)
    slo_reason = "NoData" if decision.slo_met is None else ("WithinSLO" if decision.slo_met else "SLOBreached")
    wanted = [
        (ConditionType.METRICS_AVAILABLE, metrics_ok, metrics_reason, metrics_message),
        (ConditionType.SLO_MET, decision.slo_met, slo_reason, decision.reason),
    ]
    latency: dict[str, Any] | None = None
    if obs.latency_ms is not None:
        latency = {"observedMs": round(obs.latency_ms, 2), "observedAt": now}
        if obs.source != "probe":  # a probe's figure is one stream's mean TPOT, not a percentile
            latency["percentile"] = int(obs.percentile)
            if int(obs.percentile) == 95:
                latency["p95Ms"] = round(obs.latency_ms, 2)
    state = decision.state.to_dict()
    old_state = {k: v for k, v in (current.get("autoscaler") or {}).items() if k != "reportedAt"}
    reported_at = (current.get("autoscaler") or {}).get("reportedAt")
    refresh = (
        not isinstance(reported_at, str)
        or decision.desired != current.get("desiredReplicas")
        or state != old_state
        or _latency_moved(current.get("decodeLatency"), latency)
        or any(_transition(previous, type_, status, reason) for type_, status, reason, _ in wanted)
    )
    conditions = previous
    for type_, truth, reason, message in wanted:
        old = get_condition(previous, type_)
        if not refresh and old is not None:
            message = str(old.get("message", ""))
        conditions = set_condition(conditions, type_, truth, reason, message, generation, now)
    old_metrics = get_condition(previous, ConditionType.METRICS_AVAILABLE)
    if not metrics_ok and (not old_metrics or old_metrics.get("status") != "False"):
        events.append(
            EventIntent("Warning", "MetricsUnavailable", f"holding {replicas} replicas: {decision.metrics_reason}")
        )
    status: dict[str, Any] = {
        "conditions": conditions,
        "desiredReplicas": decision.desired,
        "autoscaler": {**state, "reportedAt": now if refresh else reported_at},
    }
    if latency is not None:
        status["decodeLatency"] = latency if refresh or not current.get("decodeLatency") else current["decodeLatency"]
    if decision.direction != "hold" and decision.desired != replicas:
        status["lastScale"] = {"at": now, "from": replicas, "to": decision.desired, "reason": decision.reason}
        events.append(EventIntent("Normal", "Scaled", decision.reason))
    return status, events


def _transition(conditions: list[dict[str, Any]], type_: str, status: bool | None, reason: str) -> bool:
    old = get_condition(conditions, type_)
    text = "Unknown" if status is None else ("True" if status else "False")
    return old is None or old.get("status") != text or old.get("reason") != reason


class Autoscaler:
    """One autoscaling pass per LLMDeployment per timer tick."""

    def __init__(
        self,
        kube: Kube,
        config: OperatorConfig,
        locked: Locker,
        source_for: Callable[[str], MetricsSource] | None = None,
        prober: Prober | None = None,
        plans: PlanCache | None = None,
    ) -> None:
        self.kube = kube
        self.plans = plans or PlanCache(config.image_registry)
        self.probes = ProbeCache(prober)
        self.config = config
        self.locked = locked
        self._sources: dict[str, MetricsSource] = {}
        self._source_for = source_for or (lambda url: PrometheusMetrics(url, config.prometheus_timeout_seconds))

    def _source(self, url: str) -> MetricsSource:
        if url not in self._sources:
            self._sources[url] = self._source_for(url)
        return self._sources[url]

    def _fixed(self, namespace: str, name: str, replicas: int, why: str) -> Decision | None:
        """Without autoscaling the desired count is spec.replicas.min; written here too, so that status has one
        writer of desiredReplicas whether or not the deployment autoscales."""
        with self.locked(namespace, name):
            fresh = self.kube.get_llmd(namespace, name)
            if fresh is None:
                return None
            recorded = recorded_replicas(fresh.get("status") or {})
            if recorded == replicas:
                return None
            self.kube.patch_llmd_status(namespace, name, {"desiredReplicas": replicas})
        metrics.DESIRED_REPLICAS.labels(namespace, name).set(replicas)
        direction: Direction = "up" if recorded is not None and replicas > recorded else "down"
        reason = f"{why}: {replicas} replicas (spec.replicas.min)"
        return Decision(replicas, direction, reason, None, False, why, PolicyState())

    def step(self, body: dict[str, Any]) -> Decision | None:
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        planned = self.plans.get(body)
        spec, result = planned.spec, planned.result
        if spec is None or not isinstance(result, Plan):
            return None
        slo = spec.slo.decode_latency
        if not spec.autoscaling.enabled or slo is None:
            why = "autoscaling is disabled" if not spec.autoscaling.enabled else "no spec.slo.decodeLatency to scale on"
            return self._fixed(namespace, name, result.min_replicas, why)
        url = spec.autoscaling.prometheus_url or self.config.prometheus_url
        if url:
            obs = self._source(url).observe(
                namespace, name, result.engine, result.engine_version, slo.percentile, slo.window_s
            )
        else:
            obs = Observation.failed(
                "no Prometheus URL: set the operator's --prometheus-url or spec.autoscaling.prometheusUrl",
                time.time(),
                slo.percentile,
            )
        policy = PolicyConfig.from_plan(result, slo, spec.autoscaling)
        probe = spec.autoscaling.probe
        if probe is not None and probe.enabled and needs_probe(obs, policy.min_samples):
            # No traffic to read latency from: time a short generation through the engine (outside the lock).
            endpoint = probe.endpoint or service_endpoint(name, namespace, result.port)
            found = self.probes.get(endpoint, result.engine, probe.interval_s)
            obs = with_probe(obs, found, policy.min_samples)
        with self.locked(namespace, name):
            fresh = self.kube.get_llmd(namespace, name)
            deployment = self.kube.get("Deployment", namespace, name)
            if fresh is None or deployment is None:
                return None
            current = fresh.get("status") or {}
            # Scale from the operator's own last decision, not from the Deployment's count: a hand edit or
            # another writer's spec.replicas is drift the reconciler reverts, never a new baseline to hold.
            recorded = recorded_replicas(current)
            replicas = recorded if recorded is not None else int((deployment.get("spec") or {}).get("replicas") or 0)
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
