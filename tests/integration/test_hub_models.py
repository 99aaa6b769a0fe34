"""Models outside the catalog on the real control plane: the operator reads config.json from a fake hub on
127.0.0.1 (HF_ENDPOINT), with the token from the LLMDeployment's Secret, and says why when it cannot."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from support import hub_configs as cfg
from support.fake_hub import FakeHub, HubRepo, serve_hub
from support.operator import OperatorProcess, condition, get_llmd, llmd_api, wait_for

REPOS = {"acme/open-8b": HubRepo(cfg.LLAMA_31_8B), "acme/gated-8b": HubRepo(cfg.LLAMA_31_8B, gated_token="hf_good")}


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with serve_hub(REPOS) as fake:
        yield fake


@pytest.fixture
def hub_operator(control_plane: Any, crd: str, namespace: str, hub: FakeHub, tmp_path: Path) -> Iterator[None]:
    env = {"HF_ENDPOINT": hub.url, "LLMOP_HUB_CACHE": str(tmp_path / "hub"), "LLMOP_HUB_RETRY_SECONDS": "1"}
    proc = OperatorProcess(control_plane.kubeconfig, tmp_path / "operator.log", namespaces=(namespace,),
                           extra_env=env).start()  # fmt: skip
    try:
        yield
    finally:
        proc.stop()


def _create(kube: client.ApiClient, namespace: str, name: str, model: str, token: bool) -> None:
    spec: dict[str, Any] = {"model": {"name": model}, "gpu": {"type": "H100-80GB"}, "maxModelLen": 8192}
    if token:
        spec["model"]["tokenSecretRef"] = {"name": "hf-token", "key": "token"}
    body = {"apiVersion": "llmop.io/v1alpha1", "kind": "LLMDeployment", "metadata": {"name": name}, "spec": spec}
    llmd_api(kube).create_namespaced_custom_object("llmop.io", "v1alpha1", namespace, "llmdeployments", body)


def _planned(kube: client.ApiClient, namespace: str, name: str, status: str, reason: str) -> dict[str, Any] | None:
    found = condition(get_llmd(kube, namespace, name), "Planned")
    return found if found and (found["status"], found["reason"]) == (status, reason) else None


def _secret(kube: client.ApiClient, namespace: str, token: str) -> None:
    body = {"metadata": {"name": "hf-token"}, "data": {"token": base64.b64encode(token.encode()).decode()}}
    core = client.CoreV1Api(kube)
    if core.list_namespaced_secret(namespace, field_selector="metadata.name=hf-token").items:
        core.replace_namespaced_secret("hf-token", namespace, body)
    else:
        core.create_namespaced_secret(namespace, body)


def test_models_outside_the_catalog_are_planned_from_config_json(
    kube: client.ApiClient, namespace: str, hub: FakeHub, hub_operator: None
) -> None:
    _create(kube, namespace, "open", "acme/open-8b", token=False)
    wait_for(lambda: _planned(kube, namespace, "open", "True", "Planned"), 60, what="open model planned")
    deployment = client.AppsV1Api(kube).read_namespaced_deployment("open", namespace)
    assert deployment.spec.template.spec.containers[0].args[0] == "acme/open-8b"

    _create(kube, namespace, "gated", "acme/gated-8b", token=True)
    missing = wait_for(lambda: _planned(kube, namespace, "gated", "False", "TokenSecretUnavailable"), 60,
                       what="no Secret named")  # fmt: skip
    assert missing["message"].startswith(
        f"spec.model.name: cannot read the hub token for 'acme/gated-8b': Secret {namespace}/hf-token (key token) "
        "does not exist"
    )
    _secret(kube, namespace, "hf_wrong")
    gated = wait_for(lambda: _planned(kube, namespace, "gated", "False", "ModelGated"), 60, what="gated named")
    assert f"'acme/gated-8b' is gated on {hub.url}" in gated["message"]
    assert "hf_wrong" not in gated["message"]  # a token is never written to status
    _secret(kube, namespace, "hf_good")
    wait_for(lambda: _planned(kube, namespace, "gated", "True", "Planned"), 60, what="gated model planned")
    assert ("GET", "/acme/gated-8b/resolve/main/config.json", "Bearer hf_good") in hub.requests
    assert client.AppsV1Api(kube).read_namespaced_deployment("gated", namespace).spec.replicas == 1
