"""Ready, failing pods, model loading and the scale subresource on the real control plane (kubectl, an HPA)."""

from __future__ import annotations

import json
from typing import Any

import yaml
from kubernetes import client

from llmop.api.spec import GROUP, PLURAL, VERSION
from support.operator import ROOT, condition, events_for, get_llmd, kubectl, llmd_api, wait_for

EXAMPLE = ROOT / "examples/llama31-8b-h100-fp8-vllm.yaml"
MERGE = "application/merge-patch+json"


def _create(kube: client.ApiClient, namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["name"] = name
    doc["spec"].update(spec)
    return dict(llmd_api(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc))


def _ready_reason(kube: client.ApiClient, namespace: str, name: str, reason: str) -> dict[str, Any] | None:
    body = get_llmd(kube, namespace, name)
    ready = condition(body, "Ready") or {}
    return body if ready.get("reason") == reason else None


def _pod_name(control_plane: Any, namespace: str) -> str:
    pods = json.loads(kubectl(control_plane, "get", "pods", "-n", namespace, "-o", "json"))["items"]
    live = [p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert len(live) == 1, live
    return str(live[0])


def _set_container(kube: client.ApiClient, namespace: str, pod: str, container: dict[str, Any], ready: bool) -> None:
    """What a kubelet would report, written through the API server (kwok leaves Running pods alone)."""
    flag = "True" if ready else "False"
    status = {
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": flag},
            {"type": "Ready", "status": flag},
        ],
        "containerStatuses": [
            {"name": "engine", "image": "engine", "imageID": "", "ready": ready, "restartCount": 0, **container}
        ],
    }
    client.CoreV1Api(kube).patch_namespaced_pod_status(pod, namespace, {"status": status}, _content_type=MERGE)


def test_failing_containers_loading_and_ready_show_in_status_and_events_once(
    control_plane: Any, crd: str, namespace: str, kube: client.ApiClient, operator: Any
) -> None:
    name = "flaky"
    _create(kube, namespace, name)
    kubectl(control_plane, "wait", "-n", namespace, "--for=condition=Ready", "--timeout=90s", f"llmd/{name}")
    body = get_llmd(kube, namespace, name)
    assert body is not None
    assert body["status"]["endpoint"] == {
        "service": name,
        "port": 8000,
        "url": f"http://{name}.{namespace}.svc:8000",
        "openAIBaseURL": f"http://{name}.{namespace}.svc:8000/v1",
    }
    assert body["status"]["selector"] == f"llmop.io/llmdeployment={name}"
    pod = _pod_name(control_plane, namespace)

    missing = {"state": {"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "hf-token" not found'}}}
    _set_container(kube, namespace, pod, missing, ready=False)
    body = wait_for(lambda: _ready_reason(kube, namespace, name, "CreateContainerConfigError"), 60, what="config")
    message = f'pod {pod}: container engine: CreateContainerConfigError: secret "hf-token" not found'
    assert body["status"]["phase"] == "Failed"
    assert body["status"]["observedGeneration"] == body["metadata"]["generation"]
    said = {t: ((condition(body, t) or {}).get("status"), (condition(body, t) or {}).get("message")) for t in
            ("Ready", "Degraded", "Stalled", "Reconciling")}  # fmt: skip
    assert said == {
        "Ready": ("False", message),
        "Degraded": ("True", message),
        "Stalled": ("True", message),
        "Reconciling": ("False", ""),
    }

    oom = {
        "restartCount": 2,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s restarting failed container"}},
        "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
    }
    _set_container(kube, namespace, pod, oom, ready=False)
    body = wait_for(lambda: _ready_reason(kube, namespace, name, "CrashLoopBackOff"), 60, what="crash loop")
    assert (condition(body, "Degraded") or {}).get("message") == (
        f"pod {pod}: container engine is crash-looping (restarts: 2; last exit code 137 (OOMKilled))"
    )

    _set_container(kube, namespace, pod, {"state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}, ready=False)
    body = wait_for(lambda: _ready_reason(kube, namespace, name, "LoadingModel"), 60, what="loading")
    assert body["status"]["phase"] == "Loading"
    assert (condition(body, "Degraded") or {}).get("status") == "False"

    _set_container(kube, namespace, pod, {"state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}, ready=True)
    kubectl(control_plane, "wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", f"llmd/{name}")
    assert (get_llmd(kube, namespace, name) or {})["status"]["phase"] == "Ready"
    autoscaler = {"Planned", "MetricsUnavailable"}  # the plan's, and the autoscaler's (no Prometheus here)
    seen = [(e["type"], e["reason"]) for e in events_for(kube, namespace, name) if e["reason"] not in autoscaler]
    assert sorted(seen) == [
        ("Normal", "Available"),
        ("Normal", "Available"),
        ("Normal", "LoadingModel"),
        ("Warning", "CrashLoopBackOff"),
        ("Warning", "CreateContainerConfigError"),
    ]


def _scale(control_plane: Any, namespace: str, name: str) -> dict[str, Any]:
    out = kubectl(control_plane, "get", "--subresource=scale", "-n", namespace, f"llmd/{name}", "-o", "json")
    return dict(json.loads(out))


def _replicas(kube: client.ApiClient, namespace: str, name: str, want: int) -> bool:
    deployment = client.AppsV1Api(kube).read_namespaced_deployment(name, namespace)
    body = get_llmd(kube, namespace, name) or {}
    status = body.get("status") or {}
    return deployment.spec.replicas == want and status.get("readyReplicas") == want and status.get("phase") == "Ready"


def test_kubectl_scale_and_an_external_hpa_drive_replicas_through_the_scale_subresource(
    control_plane: Any, crd: str, namespace: str, kube: client.ApiClient, operator: Any
) -> None:
    name = "scaled"
    _create(kube, namespace, name, autoscaling={"enabled": False}, replicas={"min": 1, "max": 1})
    kubectl(control_plane, "wait", "-n", namespace, "--for=condition=Ready", "--timeout=90s", f"llmd/{name}")
    scale = _scale(control_plane, namespace, name)
    assert (scale["kind"], scale["spec"], scale["status"]) == (
        "Scale",
        {"replicas": 1},
        {"replicas": 1, "selector": f"llmop.io/llmdeployment={name}"},
    )

    kubectl(control_plane, "scale", "-n", namespace, f"llmd/{name}", "--replicas=2")
    wait_for(lambda: _replicas(kube, namespace, name, 2), 60, what="2 replicas after kubectl scale")
    assert (get_llmd(kube, namespace, name) or {})["spec"]["replicas"] == {"min": 2, "max": 1}

    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LLMDeployment", "name": name},
            "minReplicas": 3,
            "maxReplicas": 4,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                                   "averageUtilization": 80}}}],
        },
    }  # fmt: skip
    client.AutoscalingV2Api(kube).create_namespaced_horizontal_pod_autoscaler(namespace, hpa)  # type: ignore[arg-type]
    wait_for(lambda: _replicas(kube, namespace, name, 3), 120, 1.0, what="3 replicas from the HPA's minReplicas")

    def hpa_conditions() -> dict[str, tuple[str, str]] | None:
        found = json.loads(kubectl(control_plane, "get", "hpa", name, "-n", namespace, "-o", "json"))
        listed = (found.get("status") or {}).get("conditions") or []
        conditions = {str(c["type"]): (str(c["status"]), str(c.get("reason"))) for c in listed}
        return conditions if conditions.get("ScalingActive", ("", ""))[1] == "FailedGetResourceMetric" else None

    # The HPA resolved the selector and asked for the pods' CPU (this control plane serves no metrics API);
    # without status.selector it would say InvalidSelector.
    conditions = wait_for(hpa_conditions, 90, 1.0, what="the HPA reading metrics for the selected pods")
    assert conditions["AbleToScale"][0] == "True" and conditions["ScalingActive"][0] == "False"


def test_kubectl_scale_above_max_is_refused_while_autoscaling_is_enabled(
    control_plane: Any, crd: str, namespace: str, kube: client.ApiClient
) -> None:
    _create(kube, namespace, "auto", replicas={"min": 1, "max": 2})
    out = kubectl(control_plane, "scale", "-n", namespace, "llmd/auto", "--replicas=3", check=False)
    assert "replicas.min must be <= replicas.max while autoscaling is enabled" in out, out
    kubectl(control_plane, "scale", "-n", namespace, "llmd/auto", "--replicas=2")
    assert (get_llmd(kube, namespace, "auto") or {})["spec"]["replicas"] == {"min": 2, "max": 2}
