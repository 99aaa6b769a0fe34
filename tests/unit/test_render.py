"""Rendered Deployment, Service and PDB."""

from __future__ import annotations

from typing import Any

from llmop.plan.parse import parse_spec
from llmop.plan.planner import plan
from llmop.plan.types import Plan
from llmop.render.manifests import Owner, render


def _render(spec: dict[str, Any], replicas: int | None = None) -> list[dict[str, Any]]:
    p = plan(parse_spec(spec), "chat")  # type: ignore[arg-type]
    assert isinstance(p, Plan), p
    return render(p, Owner("chat", "ml", "uid-123"), replicas)


SPEC = {
    "model": {"name": "meta-llama/Llama-3.1-70B-Instruct", "tokenSecretRef": {"name": "hf", "key": "tok"}},
    "gpu": {"type": "H100-80GB"},
    "replicas": {"min": 2, "max": 4},
}


def test_objects_and_ownership() -> None:
    objects = _render(SPEC)
    assert [o["kind"] for o in objects] == ["Deployment", "Service", "PodDisruptionBudget"]
    for obj in objects:
        ref = obj["metadata"]["ownerReferences"][0]
        assert ref == {
            "apiVersion": "llmop.io/v1alpha1",
            "kind": "LLMDeployment",
            "name": "chat",
            "uid": "uid-123",
            "controller": True,
            "blockOwnerDeletion": True,
        }
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "llmop" and labels["app.kubernetes.io/instance"] == "chat"
        assert obj["metadata"]["namespace"] == "ml"


def test_pod_template_for_tensor_parallel() -> None:
    deployment = _render(SPEC)[0]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    assert container["command"] == ["vllm", "serve"]
    assert container["args"][0] == "meta-llama/Llama-3.1-70B-Instruct"
    token = next(e for e in container["env"] if e["name"] == "HF_TOKEN")
    assert token == {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "tok"}}}
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] > 400
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_single_gpu_has_no_shm_volume_and_scrape_annotations() -> None:
    deployment = _render(
        {
            "model": {"name": "meta-llama/Llama-3.1-8B-Instruct"},
            "engine": "tgi",
            "gpu": {"type": "L4", "count": 1},
            "maxModelLen": 4096,
        },
        replicas=3,
    )[0]
    assert deployment["spec"]["replicas"] == 3
    template = deployment["spec"]["template"]
    assert all(v["name"] != "dshm" for v in template["spec"]["volumes"])
    assert template["metadata"]["annotations"]["prometheus.io/port"] == "8080"
    assert template["spec"]["containers"][0]["ports"][0]["containerPort"] == 8080


def test_service_and_pdb_select_the_pods() -> None:
    deployment, service, pdb = _render(SPEC)
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector == pdb["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert all(labels[k] == v for k, v in selector.items())
    assert service["spec"]["ports"][0]["port"] == 8000


def test_pod_template_does_not_depend_on_slo_or_replica_bounds() -> None:
    base = _render(SPEC)[0]["spec"]["template"]
    changed = _render({**SPEC, "replicas": {"min": 1, "max": 8}, "slo": {"decodeLatency": {"targetMs": 90}}})[0]
    assert changed["spec"]["template"] == base


def test_liveness_is_a_lenient_tcp_check_distinct_from_readiness() -> None:
    (container,) = _render(SPEC)[0]["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"] == {
        "tcpSocket": {"port": "http"},
        "periodSeconds": 20,
        "timeoutSeconds": 5,
        "failureThreshold": 6,
    }
    assert container["readinessProbe"] == {
        "httpGet": {"path": "/health", "port": "http"},
        "periodSeconds": 5,
        "timeoutSeconds": 5,
        "failureThreshold": 3,
    }


def test_ephemeral_storage_is_requested_for_the_model_cache() -> None:
    pod = _render(SPEC)[0]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    cache = next(v for v in pod["volumes"] if v["name"] == "model-cache")
    # Llama 3.1 70B in bf16: 131.4 GiB of weights -> ceil(131.4 x 1.2) + 10 = 168 GiB
    assert cache == {"name": "model-cache", "emptyDir": {"sizeLimit": "168Gi"}}
    assert container["resources"]["requests"]["ephemeral-storage"] == "168Gi"
    assert container["resources"]["limits"]["ephemeral-storage"] == "172Gi"
    assert "cpu" not in container["resources"]["limits"]
    small = _render({**SPEC, "model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}, "quantization": "awq"})[0]
    (small_container,) = small["spec"]["template"]["spec"]["containers"]
    assert small_container["resources"]["requests"]["ephemeral-storage"] == "20Gi"  # the 20 GiB floor


def test_pdb_lets_unhealthy_pods_be_evicted_and_replicas_prefer_separate_nodes() -> None:
    deployment, _, pdb = _render(SPEC)
    assert pdb["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": deployment["spec"]["selector"]["matchLabels"]},
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    affinity = deployment["spec"]["template"]["spec"]["affinity"]
    (preferred,) = affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert preferred["podAffinityTerm"]["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
