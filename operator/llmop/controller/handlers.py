"""kopf handlers: thin adapters that hand each event to the Reconciler and the Autoscaler."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import kopf

from llmop.api.spec import GROUP, PLURAL, VERSION
from llmop.controller import telemetry
from llmop.controller.children import SeenChildren, deployment_signature, owner_of, pod_signature
from llmop.controller.coalesce import Coalescer
from llmop.controller.heap import Trimmer
from llmop.controller.reconcile import ReconcileResult
from llmop.controller.resync import Known, ResyncLoop
from llmop.controller.runtime import runtime
from llmop.render.labels import MANAGED_BY

log = logging.getLogger("llmop.handlers")
LLMD = (GROUP, VERSION, PLURAL)
RECONCILE_WORKERS = 8  # kopf's pool: create/update/resume handlers and child-event reconciles
RESYNC_WORKERS = 4  # the periodic loop's own pool, so periodic passes never delay an event-driven reconcile


KNOWN = Known()
SEEN_DEPLOYMENTS = SeenChildren()
SEEN_PODS = SeenChildren()
COALESCER = Coalescer()
TRIMMER = Trimmer(min_interval_s=1.0)
_executor: Executor | None = None  # kopf's thread pool for sync handlers, taken at start-up
_resync_task: asyncio.Task[None] | None = None
_resync_pool: ThreadPoolExecutor | None = None


async def _reconcile_owner(namespace: str, name: str) -> ReconcileResult:
    """Reconcile in kopf's thread pool, coalesced per object: the handlers are async so that events that change
    nothing (filtered in the event loop) and bursts for one object (a new Deployment's status settling) never
    hold a pool thread waiting on that object's lock while other objects wait to be created."""
    # The Reconciler reads the LLMDeployment itself (under its lock) and does nothing when it is gone.
    call = functools.partial(runtime().reconciler.reconcile, {"metadata": {"namespace": namespace, "name": name}})

    async def in_pool() -> ReconcileResult:
        result = await asyncio.get_running_loop().run_in_executor(_executor, contextvars.copy_context().run, call)
        TRIMMER.maybe_release()
        return result

    return await COALESCER.run((namespace, name), in_pool)


def periodic_pass(body: dict[str, Any]) -> None:
    """One object's periodic pass: autoscale; reconcile when that scaled or no full pass ran for a resync period."""
    rt = runtime()
    decision = rt.autoscaler.step(body)
    meta = body.get("metadata", {})
    scaled = decision is not None and decision.direction != "hold"
    if scaled or not rt.reconciler.reconciled_within(meta.get("namespace"), meta.get("name"), rt.config.resync_seconds):
        rt.reconciler.reconcile(body)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Keep kopf's bookkeeping in annotations and let llmop post its own Events."""
    global _executor
    _executor = settings.execution.executor
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="llmop.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="llmop.io", key="last-handled-configuration"
    )
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60
    settings.execution.max_workers = RECONCILE_WORKERS


@kopf.on.startup()
async def start_periodic_passes(**_: Any) -> None:
    """One operator-wide loop (no per-object timer, so no finalizer on user objects)."""
    global _resync_task, _resync_pool
    config = runtime().config
    loop = ResyncLoop(KNOWN, periodic_pass, config.autoscale_interval_seconds, RESYNC_WORKERS)
    _resync_pool = ThreadPoolExecutor(RESYNC_WORKERS, thread_name_prefix="llmop-resync")
    delay = min(config.autoscale_interval_seconds, 5.0)
    _resync_task = asyncio.get_running_loop().create_task(loop.run_forever(_resync_pool, delay), name="llmop-resync")


@kopf.on.cleanup()
async def stop_periodic_passes(**_: Any) -> None:
    if _resync_task is not None:
        _resync_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await _resync_task
    if _resync_pool is not None:
        _resync_pool.shutdown(wait=False, cancel_futures=True)


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    return kopf.login_via_client(**kwargs)


@kopf.on.create(*LLMD)
@kopf.on.update(*LLMD)
@kopf.on.resume(*LLMD)
async def reconcile(body: kopf.Body, reason: str | None = None, **_: Any) -> None:
    """Spec created or changed, or the operator (re)started: converge the children (an exception makes kopf
    retry with back-off)."""
    meta = body.get("metadata", {})
    result = await _reconcile_owner(meta["namespace"], meta["name"])
    log.info("%s/%s: %s handled (applied %s)", meta.get("namespace"), meta.get("name"), reason,
             list(result.applied) or "nothing")  # fmt: skip


@kopf.on.event(*LLMD)
async def llmdeployment_seen(body: kopf.Body, type: str | None, **_: Any) -> None:
    """Keep the periodic loop's list of objects; forget an object's metric series once it is gone."""
    KNOWN.seen(type, body)
    meta = body.get("metadata", {})
    if type == "DELETED" and meta.get("namespace") and meta.get("name"):
        telemetry.forget(meta["namespace"], meta["name"])
        runtime().reconciler.forget(meta["namespace"], meta["name"])


@kopf.on.event("apps", "v1", "deployments", labels={"app.kubernetes.io/managed-by": MANAGED_BY})
async def owned_deployment_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
    """An owned Deployment changed (rollout progress, a manual edit, deletion): reconcile its owner."""
    owner = owner_of(body)
    if owner is None or type is None:
        return
    uid = body.get("metadata", {}).get("uid")
    if type == "DELETED":
        SEEN_DEPLOYMENTS.forget(uid)
        await _reconcile_owner(*owner)
        return
    signature = deployment_signature(body)
    if SEEN_DEPLOYMENTS.changed(uid, signature):
        await _reconcile_owner(*owner)
        SEEN_DEPLOYMENTS.remember(uid, signature)


@kopf.on.event("", "v1", "pods", labels={"app.kubernetes.io/managed-by": MANAGED_BY})
async def owned_pod_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
    """Scheduling problems show on pods first: refresh the owner's status when a pod cannot be placed, and
    again when it is placed or gone."""
    owner = owner_of(body)
    if owner is None:
        return
    uid = body.get("metadata", {}).get("uid")
    if type == "DELETED":
        if SEEN_PODS.forget(uid) is not None:
            await _reconcile_owner(*owner)
        return
    signature = pod_signature(body)
    if SEEN_PODS.changed(uid, signature):
        await _reconcile_owner(*owner)
        SEEN_PODS.remember(uid, signature)
