"""Thin Kubernetes access for the controller: read, server-side apply, status patch, events. No decisions."""

from __future__ import annotations

import json
import socket
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from llmop.api.spec import GROUP, PLURAL, VERSION
from llmop.api.status import now_rfc3339
from llmop.controller.status_update import EventIntent
from llmop.render.labels import FIELD_MANAGER

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"


def _raw(response: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(response.data)
    return data


class Kube:
    """The few API calls llmop makes, returning plain dicts."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.policy = client.PolicyV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.instance = socket.gethostname()

    def get_llmd(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return cast(
                dict[str, Any], self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def patch_llmd_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": status}, _content_type=MERGE
        )

    def _reader(self, kind: str) -> Any:
        return {
            "Deployment": self.apps.read_namespaced_deployment,
            "Service": self.core.read_namespaced_service,
            "PodDisruptionBudget": self.policy.read_namespaced_pod_disruption_budget,
        }[kind]

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return _raw(self._reader(kind)(name, namespace, _preload_content=False))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply with llmop's field manager (forced: llmop owns these fields)."""
        kind, meta = obj["kind"], obj["metadata"]
        patcher = {
            "Deployment": self.apps.patch_namespaced_deployment,
            "Service": self.core.patch_namespaced_service,
            "PodDisruptionBudget": self.policy.patch_namespaced_pod_disruption_budget,
        }[kind]
        response = patcher(
            meta["name"],
            meta["namespace"],
            obj,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type=APPLY,
            _preload_content=False,
        )
        return _raw(response)

    def list_nodes(self) -> list[dict[str, Any]]:
        """Every Node (gpu.type auto reads their GPU labels and allocatable GPUs)."""
        return list(_raw(self.core.list_node(_preload_content=False)).get("items") or [])

    def list_pods(self, namespace: str, selector: dict[str, str]) -> list[dict[str, Any]]:
        label_selector = ",".join(f"{key}={value}" for key, value in selector.items())
        response = self.core.list_namespaced_pod(namespace, label_selector=label_selector, _preload_content=False)
        return list(_raw(response).get("items") or [])

    def post_event(self, body: dict[str, Any], intent: EventIntent) -> None:
        meta = body["metadata"]
        now = now_rfc3339()
        event = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": body.get("apiVersion", f"{GROUP}/{VERSION}"),
                "kind": body.get("kind", "LLMDeployment"),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "type": intent.type,
            "reason": intent.reason,
            "message": intent.message[:1024],
            "source": {"component": "llmop"},
            "reportingComponent": "llmop.io/operator",
            "reportingInstance": self.instance[:128],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        response = self.core.create_namespaced_event(meta["namespace"], cast(Any, event), _preload_content=False)
        _raw(response)  # read the body: an unread response never returns its connection to the pool
