"""Renderer: Plan -> Deployment, Service and PodDisruptionBudget as plain dicts (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from llmop.api.spec import API_VERSION, KIND
from llmop.catalog.gpus import GPU_RESOURCE
from llmop.engines.base import MODEL_CACHE_PATH
from llmop.plan.types import Plan
from llmop.render.labels import selector_labels, standard_labels

ENGINE_CONTAINER = "engine"
PROBE_PERIOD_SECONDS = 10
CPU_PER_GPU = 4
MEMORY_GIB_PER_GPU = 24
# Liveness only asks whether the server still listens: a busy engine answers /health late (TGI's runs a forward
# pass) and a restart reloads the whole model, so it restarts only after 2 minutes without a TCP accept.
LIVENESS_PERIOD_SECONDS = 20
LIVENESS_FAILURES = 6
# Ephemeral storage beyond the model cache: container logs, the engines' compile caches (Triton, torch.compile).
EPHEMERAL_HEADROOM_GIB = 4


@dataclass(frozen=True)
class Owner:
    """The LLMDeployment that owns the rendered objects."""

    name: str
    namespace: str
    uid: str | None = None

    def reference(self) -> list[dict[str, Any]]:
        if not self.uid:
            return []
        return [
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": self.name,
                "uid": self.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


def _metadata(plan: Plan, owner: Owner, name: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": owner.namespace,
        "labels": standard_labels(owner.name, plan.engine.value, plan.engine_version),
    }
    references = owner.reference()
    if references:
        metadata["ownerReferences"] = references
    return metadata


def _env(plan: Plan) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": key, "value": value} for key, value in sorted(plan.env.items())]
    if plan.token_secret:
        secret, key = plan.token_secret
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    return env


def _probe(plan: Plan, period: int, failures: int, timeout: int = 5) -> dict[str, Any]:
    return {
        "httpGet": {"path": plan.health_path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def _liveness(period: int = LIVENESS_PERIOD_SECONDS, failures: int = LIVENESS_FAILURES) -> dict[str, Any]:
    """Lenient and distinct from readiness: a TCP accept on the engine's port, not its /health."""
    return {"tcpSocket": {"port": "http"}, "periodSeconds": period, "timeoutSeconds": 5, "failureThreshold": failures}


def model_cache_gib(plan: Plan) -> int:
    """The model-cache emptyDir: the downloaded weights (+20 % for tokenizer, configs, partial files) + 10 GiB."""
    return max(math.ceil(plan.weights_gib * 1.2) + 10, 20)


def _resources(plan: Plan) -> dict[str, Any]:
    """GPUs, CPU and memory per tensor-parallel size; ephemeral storage for the model cache (so the scheduler
    places the pod on a node whose disk can hold the weights). No CPU limit: throttling stalls tokenization."""
    tp = plan.tensor_parallel
    storage = model_cache_gib(plan)
    return {
        "requests": {
            "cpu": str(CPU_PER_GPU * tp),
            "memory": f"{MEMORY_GIB_PER_GPU * tp}Gi",
            "ephemeral-storage": f"{storage}Gi",
            GPU_RESOURCE: str(tp),
        },
        "limits": {
            GPU_RESOURCE: str(tp),
            "memory": f"{MEMORY_GIB_PER_GPU * tp + 8}Gi",
            "ephemeral-storage": f"{storage + EPHEMERAL_HEADROOM_GIB}Gi",
        },
    }


def _anti_affinity(owner: Owner) -> dict[str, Any]:
    """Prefer replicas on different nodes (one node's failure takes one replica), never required."""
    term = {"labelSelector": {"matchLabels": selector_labels(owner.name)}, "topologyKey": "kubernetes.io/hostname"}
    return {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 50, "podAffinityTerm": term}]}}  # fmt: skip


def _volumes(plan: Plan) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    cache_gib = model_cache_gib(plan)
    volumes: list[dict[str, Any]] = [{"name": "model-cache", "emptyDir": {"sizeLimit": f"{cache_gib}Gi"}}]
    mounts: list[dict[str, Any]] = [{"name": "model-cache", "mountPath": MODEL_CACHE_PATH}]
    if plan.tensor_parallel > 1:
        # NCCL between tensor-parallel workers needs a large /dev/shm (docker: --ipc=host / --shm-size).
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{4 * plan.tensor_parallel}Gi"}})
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    return volumes, mounts


def pod_template(plan: Plan, owner: Owner) -> dict[str, Any]:
    volumes, mounts = _volumes(plan)
    startup_failures = math.ceil(plan.startup_seconds * 3 / PROBE_PERIOD_SECONDS) + 30
    container: dict[str, Any] = {
        "name": ENGINE_CONTAINER,
        "image": plan.image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(plan.command),
        "args": list(plan.args),
        "env": _env(plan),
        "ports": [{"name": "http", "containerPort": plan.port, "protocol": "TCP"}],
        "resources": _resources(plan),
        "startupProbe": _probe(plan, PROBE_PERIOD_SECONDS, startup_failures),
        "readinessProbe": _probe(plan, 5, 3),
        "livenessProbe": _liveness(),
        "volumeMounts": mounts,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 1000,  # the images' llm user and group (images/*/Dockerfile: USER 1000:1000)
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    return {
        "metadata": {
            "labels": standard_labels(owner.name, plan.engine.value, plan.engine_version),
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(plan.port),
                "prometheus.io/path": plan.metrics_path,
                "llmop.io/gpu-type": plan.gpu_type,
                "llmop.io/attention": plan.attention_backend,
            },
        },
        "spec": {
            "nodeSelector": dict(plan.node_selector),
            "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": _anti_affinity(owner),
            "containers": [container],
            "volumes": volumes,
            "securityContext": {"fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "terminationGracePeriodSeconds": 120,
            "enableServiceLinks": False,
            "automountServiceAccountToken": False,
        },
    }


def deployment(plan: Plan, owner: Owner, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(plan, owner, owner.name),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector_labels(owner.name)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": plan.startup_seconds * 3 + 600,
            "template": pod_template(plan, owner),
        },
    }


def service(plan: Plan, owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(plan, owner, owner.name),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(owner.name),
            "ports": [{"name": "http", "port": plan.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def pod_disruption_budget(plan: Plan, owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(plan, owner, owner.name),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(owner.name)},
            # A crash-looping or still-loading GPU pod must not block a node drain.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def render(plan: Plan, owner: Owner, replicas: int | None = None) -> list[dict[str, Any]]:
    """All objects an LLMDeployment owns, in apply order."""
    count = plan.min_replicas if replicas is None else replicas
    return [deployment(plan, owner, count), service(plan, owner), pod_disruption_budget(plan, owner)]
