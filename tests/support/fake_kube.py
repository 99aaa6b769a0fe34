"""A small in-memory stand-in for llmop.controller.kube.Kube: records every call, for reconciler unit tests."""

from __future__ import annotations

import copy
from typing import Any

from llmop.controller.status_update import EventIntent, merge_patch


class FakeKube:
    """LLMDeployments and their children in dicts; apply stores what was applied (the server's defaults aside)."""

    def __init__(self) -> None:
        self.llmds: dict[tuple[str, str], dict[str, Any]] = {}
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.pods: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.events: list[EventIntent] = []
        self.status_patches: list[dict[str, Any]] = []

    def add_llmd(self, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        body = copy.deepcopy(body)
        meta = body["metadata"]
        meta.setdefault("namespace", "ns")
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta.setdefault("generation", 1)
        self.llmds[(meta["namespace"], meta["name"])] = body

    def get_llmd(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append("get_llmd")
        found = self.llmds.get((namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def patch_llmd_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.calls.append("patch_llmd_status")
        self.status_patches.append(copy.deepcopy(status))
        body = self.llmds[(namespace, name)]
        body["status"] = merge_patch_apply(body.get("status") or {}, status)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(f"get {kind}")
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(f"apply {obj['kind']}")
        key = (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
        stored = copy.deepcopy(obj)
        if obj["kind"] == "Deployment":
            old = (self.objects.get(key) or {}).get("status") or {}
            stored["metadata"]["generation"] = ((self.objects.get(key) or {}).get("metadata") or {}).get(
                "generation", 0
            ) + 1
            stored["status"] = old
        self.objects[key] = stored
        return copy.deepcopy(stored)

    def list_pods(self, namespace: str, selector: dict[str, str]) -> list[dict[str, Any]]:
        self.calls.append("list_pods")
        return copy.deepcopy(self.pods)

    def post_event(self, body: dict[str, Any], intent: EventIntent) -> None:
        self.calls.append("post_event")
        self.events.append(intent)

    def set_deployment_status(self, namespace: str, name: str, **status: int) -> None:
        """What the Deployment controller reports: replicas, readyReplicas, updatedReplicas, observedGeneration."""
        deployment = self.objects[("Deployment", namespace, name)]
        deployment["status"] = dict(status)


def merge_patch_apply(target: Any, patch: Any) -> Any:
    """RFC 7386: apply a merge patch (null removes)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch_apply(result.get(key), value)
    return result


__all__ = ["FakeKube", "merge_patch", "merge_patch_apply"]
