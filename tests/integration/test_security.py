"""Security on the real stack: no token leaks anywhere the operator writes, engine pods pass restricted Pod Security."""

from __future__ import annotations

import base64
import json
import secrets
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from llmop.api.spec import GROUP, PLURAL, VERSION
from support.operator import ROOT, OperatorProcess, condition, get_llmd, kubectl, llmd_api, wait_for

TOKEN_EXAMPLE = ROOT / "examples/llama31-8b-h100-fp8-vllm.yaml"  # model.tokenSecretRef: {name: hf-token, key: token}
RESTRICTED_EXAMPLES = (
    TOKEN_EXAMPLE,
    ROOT / "examples/llama31-8b-h100-fp8-tgi.yaml",  # the other engine
    ROOT / "examples/qwen25-72b-h200-bf16-vllm.yaml",  # tensor parallel 2: a memory-backed /dev/shm volume
)
# Volume types the restricted Pod Security Standard allows.
ALLOWED_VOLUMES = {"emptyDir", "secret", "configMap", "projected", "downwardAPI", "ephemeral", "persistentVolumeClaim"}


def _example(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def _create(kube: client.ApiClient, namespace: str, doc: dict[str, Any]) -> str:
    llmd_api(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)
    return str(doc["metadata"]["name"])


def _available(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    body = get_llmd(kube, namespace, name)
    ok = condition(body, "Available")
    return body if ok and ok["status"] == "True" and body["status"].get("phase") == "Ready" else None


def _raw(call: Any, *args: Any, **kwargs: Any) -> str:
    """The API server's JSON for a read or list, exactly as it sent it."""
    return str(call(*args, _preload_content=False, **kwargs).data.decode())


def test_token_appears_nowhere_but_in_its_secret(
    crd: str, namespace: str, kube: client.ApiClient, operator: OperatorProcess
) -> None:
    core, apps = client.CoreV1Api(kube), client.AppsV1Api(kube)
    token = f"hf_{secrets.token_urlsafe(24)}"
    encoded = base64.b64encode(token.encode()).decode()
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "hf-token"}, "type": "Opaque", "stringData": {"token": token}}
    )
    name = _create(kube, namespace, _example(TOKEN_EXAMPLE))
    wait_for(lambda: _available(kube, namespace, name), 90, what="Available=True")
    wait_for(lambda: condition(get_llmd(kube, namespace, name), "Progressing"), 30, what="Progressing condition")

    # the search sees a secret value where one is: the Secret holds it (base64, as the API serves it)
    assert encoded in _raw(core.read_namespaced_secret, "hf-token", namespace)
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=10).read().decode()
    places = {
        "LLMDeployment (spec, status, annotations)": _raw(
            llmd_api(kube).get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name
        ),
        "Events": _raw(core.list_namespaced_event, namespace),
        "Deployment": _raw(apps.read_namespaced_deployment, name, namespace),
        "ReplicaSets": _raw(apps.list_namespaced_replica_set, namespace),
        "Pods": _raw(core.list_namespaced_pod, namespace),
        "Service": _raw(core.read_namespaced_service, name, namespace),
        "operator log": operator.log(),
        "operator /metrics": metrics,
    }
    # each place is the real thing, about this object
    assert f'llmdeployment="{name}"' in metrics and f'namespace="{namespace}"' in metrics
    assert name in places["operator log"] and "Planned" in places["Events"]
    for place, text in places.items():
        for form in (token, encoded):
            assert form not in text, f"the token leaked into {place}"
    # the engine gets it by reference only
    deployment = json.loads(places["Deployment"])
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    hf = [env for env in container["env"] if env["name"] == "HF_TOKEN"]
    assert hf == [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}}}]
    assert all("value" not in env or token not in env["value"] for env in container["env"])
    assert operator.alive()


def _check_restricted_fields(pod: dict[str, Any]) -> None:
    spec = pod["spec"]
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(key), key
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec.get("automountServiceAccountToken") is False
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        assert kinds <= ALLOWED_VOLUMES, volume
    for container in spec["containers"] + (spec.get("initContainers") or []):
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}  # nothing added back
        assert security["runAsNonRoot"] is True and security.get("runAsUser", 1) != 0
        assert not security.get("privileged")
        assert all("hostPort" not in port for port in container.get("ports") or [])


def test_engine_pods_pass_the_restricted_pod_security_standard(
    control_plane: Any, crd: str, namespace: str, kube: client.ApiClient, operator: OperatorProcess
) -> None:
    core = client.CoreV1Api(kube)
    kubectl(
        control_plane,
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    )
    # enforcement is on here: a pod with none of the restricted settings is refused
    plain = {"metadata": {"name": "plain"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, plain)
    assert refused.value.status == 403 and "violates PodSecurity" in str(refused.value.body)

    names = [_create(kube, namespace, _example(path)) for path in RESTRICTED_EXAMPLES]
    for name in names:
        wait_for(lambda n=name: _available(kube, namespace, n), 120, what=f"{name} Available=True")
    pods = json.loads(_raw(core.list_namespaced_pod, namespace))["items"]
    owners = {pod["metadata"]["labels"].get("llmop.io/llmdeployment") for pod in pods}
    assert owners == set(names), owners
    for pod in pods:
        assert pod["status"]["phase"] == "Running", (pod["metadata"]["name"], pod["status"])
        _check_restricted_fields(pod)
    assert any(v.get("emptyDir", {}).get("medium") == "Memory" for p in pods for v in p["spec"]["volumes"])
    # the ReplicaSets created every pod they wanted: no PodSecurity refusal on the way
    failed = [
        e.message
        for e in core.list_namespaced_event(namespace).items
        if e.reason == "FailedCreate" or "PodSecurity" in (e.message or "")
    ]
    assert not failed, failed
    assert operator.alive()
