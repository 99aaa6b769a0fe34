"""Reconcile one LLMDeployment: plan, render, apply what drifted, report status. Level-triggered, idempotent."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from llmop.api.status import now_rfc3339
from llmop.controller import telemetry
from llmop.controller.drift import managed_fields_drift
from llmop.controller.gpu_choice import NodeGpus, with_choice
from llmop.controller.kube import Kube
from llmop.controller.plans import PlanCache
from llmop.controller.serving import rollout_complete
from llmop.controller.settings import OperatorConfig
from llmop.controller.status_update import Observed, compute_status, recorded_replicas, status_changed
from llmop.plan.planner import MAX_OBJECT_NAME
from llmop.plan.types import Plan, PlanErrors
from llmop.render.labels import selector_labels
from llmop.render.manifests import Owner, render

log = logging.getLogger("llmop.reconcile")


@dataclass(frozen=True)
class ReconcileResult:
    """What one pass did (for logs, metrics and tests)."""

    planned: bool
    applied: tuple[str, ...]
    status_written: bool
    events: tuple[str, ...]


def desired_replicas(body: dict[str, Any], result: Plan | PlanErrors) -> int | None:
    """Replicas to run: the autoscaler's last decision within [min, max], or min when it has none."""
    if isinstance(result, PlanErrors):
        return None
    autoscaling = (body.get("spec") or {}).get("autoscaling") or {}
    recorded = recorded_replicas(body.get("status") or {})
    if autoscaling.get("enabled", True) is False or recorded is None:
        return result.min_replicas
    return min(max(recorded, result.min_replicas), result.max_replicas)


class Reconciler:
    """Runs reconcile passes; one at a time per object."""

    def __init__(self, kube: Kube, config: OperatorConfig, plans: PlanCache | None = None) -> None:
        self.kube = kube
        self.config = config
        self.plans = plans or PlanCache(config.image_registry, gpus=NodeGpus(kube))
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self._passed: dict[tuple[str, str], float] = {}  # monotonic end of the last complete pass per object

    @contextmanager
    def locked(self, namespace: str, name: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault((namespace, name), threading.Lock())
        with lock:
            yield

    def plan_for(self, body: dict[str, Any]) -> Plan | PlanErrors:
        return self.plans.get(body).result

    def reconciled_within(self, namespace: str, name: str, seconds: float) -> bool:
        """True when a complete pass over this object ended less than `seconds` ago."""
        with self._guard:
            passed = self._passed.get((namespace, name))
        return passed is not None and time.monotonic() - passed < seconds

    def forget(self, namespace: str, name: str) -> None:
        with self._guard:
            self._passed.pop((namespace, name), None)
        self.plans.forget(namespace, name)

    def reconcile(self, body: dict[str, Any]) -> ReconcileResult:
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        started = time.monotonic()
        with self.locked(namespace, name):
            fresh = self.kube.get_llmd(namespace, name)
            if fresh is None or fresh["metadata"].get("deletionTimestamp"):
                return ReconcileResult(False, (), False, ())
            result = self._reconcile_locked(fresh)
            with self._guard:
                self._passed[(namespace, name)] = time.monotonic()
        telemetry.RECONCILE_DURATION.labels(namespace, name).observe(time.monotonic() - started)
        return result

    def _reconcile_locked(self, body: dict[str, Any]) -> ReconcileResult:
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        planned = self.plans.get(body)
        result = planned.result
        replicas = desired_replicas(body, result)
        applied: list[str] = []
        deployment: dict[str, Any] | None = None
        if isinstance(result, Plan):
            owner = Owner(name, namespace, meta.get("uid"))
            for obj in render(result, owner, replicas):
                live = self.kube.get(obj["kind"], namespace, obj["metadata"]["name"])
                if managed_fields_drift(obj, live):
                    live = self.kube.apply(obj)  # the apply answers with the object as now stored
                    applied.append(obj["kind"])
                if obj["kind"] == "Deployment":
                    deployment = live  # just read or applied: no second GET for the status
        else:
            telemetry.PLAN_REFUSALS.labels(namespace, name).inc()
            deployment = self.kube.get("Deployment", namespace, name)
        # Pods matter only while one may be Pending, failing or loading; none is once the rollout is done (all desired
        # replicas updated and ready). A name longer than a label value cannot select pods (the API refuses the
        # selector); the planner refuses it.
        pods: list[dict[str, Any]] = []
        if not rollout_complete(deployment) and len(name) <= MAX_OBJECT_NAME:
            pods = self.kube.list_pods(namespace, selector_labels(name))
        observed = Observed(deployment=deployment, pods=pods)
        current = body.get("status") or {}
        update = compute_status(current, meta.get("generation"), result, observed, now_rfc3339(), (namespace, name))
        update = with_choice(update, planned, current)  # gpu.type/quantization auto: the choice and runner-up
        changed = status_changed(current, update.status)
        if changed:
            self.kube.patch_llmd_status(namespace, name, changed)
        for event in update.events:
            self.kube.post_event(body, event)
        telemetry.record_replicas(namespace, name, update.status)
        if applied or changed:
            log.info("%s/%s: applied %s; status %s", namespace, name, applied or "nothing", sorted(changed))
        return ReconcileResult(
            planned=isinstance(result, Plan),
            applied=tuple(applied),
            status_written=bool(changed),
            events=tuple(e.reason for e in update.events),
        )
