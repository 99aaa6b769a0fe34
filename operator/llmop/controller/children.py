"""Which owned-child events matter: a signature of what a reconcile reads, remembered per child uid."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping
from typing import Any

from llmop.controller.pod_health import pod_signature as pod_state
from llmop.render.labels import SELECTOR_LABEL


def deployment_signature(body: Mapping[str, Any]) -> Hashable:
    """What a reconcile reads from an owned Deployment: drift (any spec change bumps the generation; labels and
    owners) and the rollout counts behind status. A controller refreshing a condition's timestamp changes none."""
    meta, spec, status = (body.get(key) or {} for key in ("metadata", "spec", "status"))
    return (
        meta.get("generation"),
        meta.get("deletionTimestamp"),
        repr(sorted((meta.get("labels") or {}).items())),
        repr(meta.get("ownerReferences")),
        spec.get("replicas"),
        status.get("observedGeneration"),
        status.get("replicas"),
        status.get("readyReplicas"),
        status.get("updatedReplicas"),
    )


def pod_signature(body: Mapping[str, Any]) -> Hashable:
    """What a reconcile reads from an owned pod: the scheduler's reason when it cannot place it, a failing
    container's reason and message, or that it is loading the model (None: placed and healthy)."""
    return pod_state(body)


def owner_of(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """(namespace, LLMDeployment name) from a child's selector label; None for an object llmop does not own."""
    meta = body.get("metadata") or {}
    owner, namespace = (meta.get("labels") or {}).get(SELECTOR_LABEL), meta.get("namespace")
    return (namespace, owner) if owner and namespace else None


class SeenChildren:
    """Per child uid, the signature of the last event that led to a reconcile: events that change nothing the
    reconcile reads are skipped. A missing entry stands for `default`, so only changed children are kept.
    kopf hands one object's events to its handler one at a time; the lock guards the dict across objects."""

    def __init__(self, default: Hashable = None) -> None:
        self.default = default
        self._seen: dict[str, Hashable] = {}
        self._lock = threading.Lock()

    def changed(self, uid: str | None, signature: Hashable) -> bool:
        with self._lock:
            return uid is None or self._seen.get(uid, self.default) != signature

    def remember(self, uid: str | None, signature: Hashable) -> None:
        if uid is None:
            return
        with self._lock:
            if signature == self.default:
                self._seen.pop(uid, None)
            else:
                self._seen[uid] = signature

    def forget(self, uid: str | None) -> Hashable:
        """Drop the entry; returns what it was (`default` when there was none)."""
        with self._lock:
            return self._seen.pop(uid, self.default) if uid is not None else self.default

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)
