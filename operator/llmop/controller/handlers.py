"""kopf handlers: thin adapters that hand each event to the Reconciler and the Autoscaler."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from llmop.api.spec import GROUP, PLURAL, VERSION
from llmop.controller import metrics
from llmop.controller.runtime import runtime
from llmop.controller.settings import OperatorConfig
from llmop.render.labels import MANAGED_BY, SELECTOR_LABEL

log = logging.getLogger("llmop.handlers")
LLMD = (GROUP, VERSION, PLURAL)
INTERVAL = OperatorConfig.from_env().autoscale_interval_seconds


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Keep kopf's bookkeeping in annotations and let llmop post its own Events."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="llmop.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="llmop.io", key="last-handled-configuration"
    )
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    return kopf.login_via_client(**kwargs)


@kopf.on.create(*LLMD)
@kopf.on.update(*LLMD)
@kopf.on.resume(*LLMD)
def reconcile(body: kopf.Body, reason: str | None = None, **_: Any) -> None:
    """Spec created or changed, or the operator (re)started: converge the children."""
    result = runtime().reconciler.reconcile(dict(body))
    meta = body.get("metadata", {})
    log.info("%s/%s: %s handled (applied %s)", meta.get("namespace"), meta.get("name"), reason,
             list(result.applied) or "nothing")  # fmt: skip


@kopf.timer(*LLMD, interval=INTERVAL, initial_delay=min(INTERVAL, 5.0), sharp=False)
def resync(body: kopf.Body, **_: Any) -> None:
    """Periodic level-triggered pass: autoscale, heal drift, refresh status."""
    rt = runtime()
    rt.autoscaler.step(dict(body))
    rt.reconciler.reconcile(dict(body))


@kopf.on.event("apps", "v1", "deployments", labels={"app.kubernetes.io/managed-by": MANAGED_BY})
def owned_deployment_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
    """An owned Deployment changed (rollout progress, a manual edit, deletion): reconcile its owner."""
    owner = (body.get("metadata", {}).get("labels") or {}).get(SELECTOR_LABEL)
    namespace = body.get("metadata", {}).get("namespace")
    if not owner or not namespace or type is None:
        return
    rt = runtime()
    owner_body = rt.kube.get_llmd(namespace, owner)
    if owner_body is None:
        return
    rt.reconciler.reconcile(owner_body)


@kopf.on.event("", "v1", "pods", labels={"app.kubernetes.io/managed-by": MANAGED_BY})
def owned_pod_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
    """Scheduling problems show on pods first: refresh the owner's status when a pod cannot be placed."""
    status = body.get("status") or {}
    if status.get("phase") != "Pending":
        return
    owner = (body.get("metadata", {}).get("labels") or {}).get(SELECTOR_LABEL)
    namespace = body.get("metadata", {}).get("namespace")
    if not owner or not namespace:
        return
    rt = runtime()
    owner_body = rt.kube.get_llmd(namespace, owner)
    if owner_body is not None:
        rt.reconciler.reconcile(owner_body)


@kopf.on.delete(*LLMD, optional=True)
def deleted(namespace: str | None, name: str | None, **_: Any) -> None:
    """Children go with the owner through garbage collection; only forget the metric series."""
    if namespace and name:
        metrics.forget(namespace, name)
