"""The local control plane: kwok GPU fleet, real scheduling, kwok readiness, GC and the version."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import yaml
from kubernetes import client

from llmop.catalog.gpus import GFD_PRODUCT_LABEL, GPU_RESOURCE, GPUS, node_labels
from llmop_dev.localcluster.controlplane import POD_READY_DELAY_ANNOTATION, ControlPlane, kwok_stages
from llmop_dev.localcluster.nodes import DEFAULT_FLEET, GPU_TAINT, POOL_LABEL, fleet_manifests, node_is_ready

T = TypeVar("T")
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}


def wait_for(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def pod_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def pod_spec(gpus: int, node_selector: dict[str, str] | None = None) -> dict[str, Any]:
    resources = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
    if gpus:
        resources["limits"][GPU_RESOURCE] = str(gpus)
    return {
        "containers": [{"name": "engine", "image": "vllm/vllm-openai:latest", "resources": resources}],
        "nodeSelector": node_selector or {},
        "tolerations": [GPU_TOLERATION] if gpus else [],
    }


def deployment(name: str, replicas: int, spec: dict[str, Any]) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": spec},
        },
    }


def test_version_is_built_version(kube: client.ApiClient) -> None:
    assert client.VersionApi(kube).get_code().git_version == "v1.34.4"


def test_fleet_nodes_ready_with_gfd_labels_and_gpus(kube: client.ApiClient) -> None:
    nodes = {n.metadata.name: n for n in client.CoreV1Api(kube).list_node(label_selector="type=kwok").items}
    assert set(nodes) == {m["metadata"]["name"] for m in fleet_manifests(DEFAULT_FLEET)}
    for pool in DEFAULT_FLEET:
        for index in range(pool.nodes):
            node = nodes[pool.node_name(index)]
            assert node_is_ready(node), node.metadata.name
            assert node.metadata.labels[POOL_LABEL] == pool.name
            if pool.gpu is None:
                assert GPU_RESOURCE not in node.status.allocatable
                continue
            assert node_labels(GPUS[pool.gpu], pool.gpus_per_node).items() <= node.metadata.labels.items()
            assert node.status.allocatable[GPU_RESOURCE] == str(pool.gpus_per_node)
            taints = [{"key": t.key, "value": t.value, "effect": t.effect} for t in node.spec.taints]
            assert GPU_TAINT in taints


def test_gpu_deployment_is_scheduled_on_a100_and_ready(kube: client.ApiClient, namespace: str) -> None:
    core, apps = client.CoreV1Api(kube), client.AppsV1Api(kube)
    a100 = {GFD_PRODUCT_LABEL: GPUS["A100-80GB"].gfd_product}
    apps.create_namespaced_deployment(namespace, deployment("llm", 1, pod_spec(2, a100)))

    def ready_pod() -> Any:
        pods = core.list_namespaced_pod(namespace, label_selector="app=llm").items
        return next((p for p in pods if pod_ready(p)), None)

    pod = wait_for(ready_pod, 60, "the A100 pod to be Ready")
    assert pod.status.phase == "Running"
    node = core.read_node(pod.spec.node_name)
    assert node.metadata.labels[GFD_PRODUCT_LABEL] == "NVIDIA-A100-SXM4-80GB"
    assert node.metadata.labels[POOL_LABEL] == "a100-80gb-x4"
    deployed = wait_for(lambda: apps.read_namespaced_deployment("llm", namespace).status.ready_replicas, 30, "ready")
    assert deployed == 1


def test_sixteen_gpus_stay_pending_unschedulable(kube: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "huge"}, "spec": pod_spec(16)}
    core.create_namespaced_pod(namespace, pod)

    def unschedulable() -> Any:
        status = core.read_namespaced_pod("huge", namespace).status
        return next(
            (c for c in status.conditions or [] if c.type == "PodScheduled" and c.reason == "Unschedulable"),
            None,
        )

    condition = wait_for(unschedulable, 60, "PodScheduled=False/Unschedulable")
    assert condition.status == "False"
    assert "nvidia.com/gpu" in condition.message
    events = wait_for(
        lambda: core.list_namespaced_event(namespace, field_selector="reason=FailedScheduling").items,
        30,
        "a FailedScheduling event",
    )
    assert events[0].involved_object.name == "huge"
    assert core.read_namespaced_pod("huge", namespace).status.phase == "Pending"


def test_deleting_a_deployment_garbage_collects_replicasets_and_pods(kube: client.ApiClient, namespace: str) -> None:
    core, apps = client.CoreV1Api(kube), client.AppsV1Api(kube)
    apps.create_namespaced_deployment(namespace, deployment("web", 2, pod_spec(0)))
    wait_for(
        lambda: sum(pod_ready(p) for p in core.list_namespaced_pod(namespace, label_selector="app=web").items) == 2,
        60,
        "two Ready pods",
    )
    assert len(apps.list_namespaced_replica_set(namespace, label_selector="app=web").items) == 1
    apps.delete_namespaced_deployment("web", namespace, propagation_policy="Background")

    def all_gone() -> bool:
        replica_sets = apps.list_namespaced_replica_set(namespace, label_selector="app=web").items
        pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
        return not replica_sets and not pods

    wait_for(all_gone, 60, "the ReplicaSet and its pods to be garbage-collected")


def test_pod_ready_delay_annotation_holds_readiness_back(kube: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "slow", "annotations": {POD_READY_DELAY_ANNOTATION: "4s"}},
        "spec": pod_spec(0),
    }
    core.create_namespaced_pod(namespace, pod)
    created = time.monotonic()
    wait_for(lambda: core.read_namespaced_pod("slow", namespace).spec.node_name, 30, "the pod to be scheduled")
    assert not pod_ready(core.read_namespaced_pod("slow", namespace))
    wait_for(lambda: pod_ready(core.read_namespaced_pod("slow", namespace)), 30, "the delayed pod to be Ready")
    assert time.monotonic() - created >= 3.5


def test_kwok_stages_delay_pod_ready_only(control_plane: ControlPlane) -> None:
    assert control_plane.binaries is not None
    default = control_plane.binaries.kwok_stages.read_text()

    def delays(text: str) -> dict[str, Any]:
        return {s["metadata"]["name"]: s["spec"].get("delay") for s in yaml.safe_load_all(text) if s}

    before, after = delays(default), delays(kwok_stages(default, 2.5))
    assert before["pod-ready"] is None
    assert after["pod-ready"]["durationMilliseconds"] == 2500
    assert after["pod-ready"]["durationFrom"] == {
        "expressionFrom": f'.metadata.annotations["{POD_READY_DELAY_ANNOTATION}"]'
    }
    assert {"node-initialize", "pod-delete", "pod-complete"} <= after.keys()
    assert {k: v for k, v in after.items() if k != "pod-ready"} == {k: v for k, v in before.items() if k != "pod-ready"}
