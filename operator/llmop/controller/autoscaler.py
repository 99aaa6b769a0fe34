"""Autoscaler shell: read metrics, ask the pure policy, record the decision in status. No decisions here."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from llmop.api.status import now_rfc3339
from llmop.autoscale.fallback import (
    ProbeCache,
    Prober,
    needs_probe,
    probe_target,
    refused,
    service_endpoint,
    with_probe,
)
from llmop.autoscale.metrics import MetricsSource, Observation, PrometheusMetrics
from llmop.autoscale.policy import Decision, Direction, PolicyConfig, PolicyState, decide
from llmop.controller import telemetry
from llmop.controller.kube import Kube
from llmop.controller.plans import PlanCache
from llmop.controller.settings import OperatorConfig
from llmop.controller.status_update import decision_status, recorded_replicas, status_changed
from llmop.plan.types import Plan

log = logging.getLogger("llmop.autoscaler")

Locker = Callable[[str, str], AbstractContextManager[None]]


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
        self.outbound = config.outbound_policy()  # which spec URLs may be sent requests at all
        self._sources: dict[str, MetricsSource] = {}
        client = config.prometheus_client()
        self._source_for = source_for or (
            lambda url: PrometheusMetrics(url, config.prometheus_timeout_seconds, client=client)
        )

    def _source(self, url: str) -> MetricsSource:
        if url not in self._sources:
            if len(self._sources) >= 256:  # many distinct allowed URLs: start over rather than grow
                self._sources.clear()
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
        telemetry.DESIRED_REPLICAS.labels(namespace, name).set(replicas)
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
        refusal = self.outbound.prometheus_refusal(url) if url else None
        if refusal is not None:  # a spec URL the operator may not query: no request is sent
            obs = Observation.failed(refusal, time.time(), slo.percentile)
        elif url:
            ttft = spec.slo.time_to_first_token
            obs = self._source(url).observe(
                namespace, name, result.engine, result.engine_version, slo.percentile, slo.window_s,
                ttft_percentile=None if ttft is None else ttft.percentile,
            )  # fmt: skip
        else:
            obs = Observation.failed(
                "no Prometheus URL: set the operator's --prometheus-url or spec.autoscaling.prometheusUrl",
                time.time(),
                slo.percentile,
            )
        policy = PolicyConfig.from_plan(result, slo, spec.autoscaling, spec.slo.time_to_first_token)
        probe = spec.autoscaling.probe
        if probe is not None and probe.enabled and needs_probe(obs, policy.min_samples):
            # No traffic to read latency from: time a short generation through the engine (outside the lock).
            own_service = service_endpoint(name, namespace, result.port)
            endpoint, blocked = probe_target(probe.endpoint, own_service, self.outbound)
            if blocked is not None:
                found = refused(endpoint, result.engine, blocked)
            else:
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
        telemetry.SLO_TARGET.labels(namespace, name).set(slo.target_ms)
        telemetry.SLO_PERCENTILE.labels(namespace, name).set(slo.percentile)
        telemetry.METRICS_AVAILABLE.labels(namespace, name).set(1 if decision.metrics_available else 0)
        telemetry.DESIRED_REPLICAS.labels(namespace, name).set(decision.desired)
        if obs.latency_ms is not None:
            telemetry.OBSERVED_LATENCY.labels(namespace, name).set(obs.latency_ms)
        telemetry.SCALE_DECISIONS.labels(namespace, name, decision.direction).inc()
        if decision.direction != "hold":
            log.info("%s/%s: %s", namespace, name, decision.reason)
        return decision
