"""Security on the real stack: no token leaks anywhere the operator writes, engine pods pass restricted Pod Security,
spec URLs cannot aim the operator elsewhere, Prometheus TLS and credentials, RBAC under owner-reference enforcement."""

from __future__ import annotations

import base64
import json
import secrets
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException

from llmop.api.spec import GROUP, PLURAL, VERSION
from llmop_dev.localcluster.samples import h100_llmdeployment
from support.canary import SECRET_BODY, Answer, canary, self_signed
from support.operator import ROOT, OperatorProcess, condition, events_for, get_llmd, kubectl, llmd_api, wait_for
from support.rbac import service_account_kubeconfig

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


# ---- outbound requests from spec URLs, Prometheus TLS and credentials, RBAC under owner-reference enforcement ----
# Every server here is a canary on 127.0.0.1; the operator is started with the settings under test.

MESSAGE_LIMIT_S = 90  # planning, the Deployment, then an autoscaler pass (every 2 s)


def _idle_prometheus(path: str) -> Answer:
    """Prometheus for a deployment with no traffic: every query answers one series at 0 (running, waiting, rates)."""
    if not path.startswith("/api/v1/query"):
        return Answer(404)
    row = {"metric": {}, "value": [time.time(), "0"]}
    return Answer(200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": [row]}}))


def _start(control_plane: Any, namespace: str, log: Path, prometheus_url: str, **env: str) -> OperatorProcess:
    return OperatorProcess(
        control_plane.kubeconfig, log, namespaces=(namespace,), prometheus_url=prometheus_url, extra_env=env
    ).start()


def _metrics_message(kube: client.ApiClient, namespace: str, name: str, needle: str) -> str | None:
    found = condition(get_llmd(kube, namespace, name), "MetricsAvailable")
    if found and found["status"] == "False" and needle in found["message"]:
        return str(found["message"])
    return None


def _written(kube: client.ApiClient, namespace: str, name: str) -> str:
    """Everything the operator wrote about the object that its owner can read: the object and the Events."""
    core = client.CoreV1Api(kube)
    llmd = _raw(llmd_api(kube).get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)
    return llmd + _raw(core.list_namespaced_event, namespace)


def test_a_spec_prometheus_url_outside_the_allowlist_is_refused_without_a_request(
    control_plane: Any, crd: str, namespace: str, kube: client.ApiClient, tmp_path: Path
) -> None:
    with canary(_idle_prometheus) as own, canary() as victim:
        target = f"{victim.url}/latest/meta-data"
        proc = _start(control_plane, namespace, tmp_path / "refusing.log", own.url)
        try:
            _create(kube, namespace, h100_llmdeployment("ssrf", autoscaling={"prometheusUrl": target}))
            message = wait_for(lambda: _metrics_message(kube, namespace, "ssrf", "not allowed"), MESSAGE_LIMIT_S,
                               what="MetricsAvailable=False naming the setting")  # fmt: skip
            assert message == (
                f"spec.autoscaling.prometheusUrl {target} is not allowed by the operator: it is neither the "
                "operator's Prometheus URL nor under an allowed prefix (--allow-prometheus-url-prefix (env "
                "LLMOP_ALLOWED_PROMETHEUS_URL_PREFIXES): none); no request was sent"
            )
            time.sleep(6)  # three more autoscaler passes
            assert victim.hits() == 0 and own.hits() == 0
            warnings = [e for e in events_for(kube, namespace, "ssrf") if e["reason"] == "MetricsUnavailable"]
            assert warnings and all(target in e["message"] and "not allowed" in e["message"] for e in warnings)
        finally:
            proc.stop()

        # the same URL under an allowed prefix is queried; what it answers never reaches status or Events
        # (a new object: a condition that stays False keeps its first message, status_update.decision_status)
        proc = _start(control_plane, namespace, tmp_path / "allowing.log", own.url,
                      LLMOP_ALLOWED_PROMETHEUS_URL_PREFIXES=f"{victim.url}/latest")  # fmt: skip
        try:
            _create(kube, namespace, h100_llmdeployment("allowed", autoscaling={"prometheusUrl": target}))
            message = wait_for(lambda: _metrics_message(kube, namespace, "allowed", "BadAnswer"), MESSAGE_LIMIT_S,
                               what="the allowed URL's failure")  # fmt: skip
            assert message == f"prometheus {target}: BadAnswer: the answer is not JSON"
            assert victim.hits() > 0 and {seen.path.split("?")[0] for seen in victim.requests} == {
                "/latest/meta-data/api/v1/query"
            }
            assert all("Authorization" not in seen.headers for seen in victim.requests)
            assert SECRET_BODY not in _written(kube, namespace, "allowed")
        finally:
            proc.stop()


def test_a_custom_probe_endpoint_is_refused_unless_allowed(
    control_plane: Any, crd: str, namespace: str, kube: client.ApiClient, tmp_path: Path
) -> None:
    with canary(_idle_prometheus) as prometheus, canary() as victim:
        probe = {"enabled": True, "endpoint": victim.url, "interval": "2s"}
        proc = _start(control_plane, namespace, tmp_path / "refusing.log", prometheus.url)
        try:
            _create(kube, namespace, h100_llmdeployment("probed", autoscaling={"probe": probe}))
            message = wait_for(lambda: _metrics_message(kube, namespace, "probed", "not allowed"), MESSAGE_LIMIT_S,
                               what="the refused probe")  # fmt: skip
            assert message.endswith(
                f"tokens in the window < 200 and the active probe of {victim.url} failed: "
                f"spec.autoscaling.probe.endpoint {victim.url} is not allowed by the operator: only the deployment's "
                f"own Service (http://probed.{namespace}.svc:8000) is probed unless --allow-custom-probe-endpoints "
                "(env LLMOP_ALLOW_CUSTOM_PROBE_ENDPOINTS) is set; no request was sent"
            ), message
            time.sleep(6)
            assert victim.hits() == 0 and prometheus.hits() > 0
        finally:
            proc.stop()

        proc = _start(control_plane, namespace, tmp_path / "allowing.log", prometheus.url,
                      LLMOP_ALLOW_CUSTOM_PROBE_ENDPOINTS="true")  # fmt: skip
        try:
            _create(kube, namespace, h100_llmdeployment("allowed", autoscaling={"probe": probe}))
            message = wait_for(lambda: _metrics_message(kube, namespace, "allowed", "BadAnswer"), MESSAGE_LIMIT_S,
                               what="the allowed probe's failure")  # fmt: skip
            assert message.endswith(f"the active probe of {victim.url} failed: BadAnswer: the answer is not JSON")
            assert victim.hits() > 0 and SECRET_BODY not in _written(kube, namespace, "allowed")
        finally:
            proc.stop()


def test_prometheus_tls_is_verified_and_the_bearer_token_is_re_read_on_rotation(
    control_plane: Any, crd: str, namespace: str, kube: client.ApiClient, tmp_path: Path
) -> None:
    cert = self_signed(tmp_path / "pki")
    token = tmp_path / "token"
    token.write_text("token-one\n")
    with canary(_idle_prometheus, cert) as prometheus:
        proc = _start(control_plane, namespace, tmp_path / "untrusting.log", prometheus.url,
                      LLMOP_PROMETHEUS_BEARER_TOKEN_FILE=str(token))  # fmt: skip
        try:
            _create(kube, namespace, h100_llmdeployment("tls"))
            message = wait_for(lambda: _metrics_message(kube, namespace, "tls", "Certificate"), MESSAGE_LIMIT_S,
                               what="the certificate problem")  # fmt: skip
            assert message == (
                f"prometheus {prometheus.url}: CertificateRejected: TLS certificate verification failed: self-signed "
                "certificate; give the operator the CA bundle (--prometheus-ca-file, env LLMOP_PROMETHEUS_CA_FILE)"
            )
            assert prometheus.hits() == 0  # no request (and no token) went over the unverified connection
        finally:
            proc.stop()

        trusted = {"LLMOP_PROMETHEUS_BEARER_TOKEN_FILE": str(token), "LLMOP_PROMETHEUS_CA_FILE": str(cert.cert)}
        proc = _start(control_plane, namespace, tmp_path / "trusting.log", prometheus.url, **trusted)
        try:
            _create(kube, namespace, h100_llmdeployment("trusted"))
            wait_for(lambda: prometheus.hits() > 0, MESSAGE_LIMIT_S, what="queries over verified TLS")
            metrics = wait_for(lambda: condition(get_llmd(kube, namespace, "trusted"), "MetricsAvailable"), 30,
                               what="the trusted deployment's MetricsAvailable")  # fmt: skip
            assert "Certificate" not in metrics["message"] and "TLS" not in metrics["message"], metrics
            assert {seen.headers.get("Authorization") for seen in prometheus.requests} == {"Bearer token-one"}
            token.write_text("token-two\n")  # the Secret rotated (kubelet swaps the mounted file)
            wait_for(lambda: prometheus.requests[-1].headers.get("Authorization") == "Bearer token-two", 30,
                     what="the rotated token")  # fmt: skip
            assert proc.alive() and "token-one" not in proc.log() and "token-two" not in proc.log()
        finally:
            proc.stop()


def test_block_owner_deletion_needs_the_finalizers_rule_the_chart_grants(
    control_plane: Any, crd: str, namespace: str, kube: client.ApiClient, tmp_path: Path
) -> None:
    """The control plane enforces OwnerReferencesPermissionEnforcement: a writer that may not update the owner's
    finalizers cannot set blockOwnerDeletion on a child (what the operator's children carry)."""
    core, rbac, apps = client.CoreV1Api(kube), client.RbacAuthorizationV1Api(kube), client.AppsV1Api(kube)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "writer"}})
    rules = [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create", "get"]},
        {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["get"]},
    ]
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "writer"}, "rules": rules})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "writer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "writer"},
        "subjects": [{"kind": "ServiceAccount", "name": "writer", "namespace": namespace}],
    })  # fmt: skip
    owner = llmd_api(kube).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, h100_llmdeployment("owner")
    )
    reference = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LLMDeployment", "name": "owner",
                 "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}  # fmt: skip
    child = {
        "metadata": {"name": "child", "ownerReferences": [reference]},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "child"}},
            "template": {
                "metadata": {"labels": {"app": "child"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        },
    }
    binaries = control_plane.binaries
    config = service_account_kubeconfig(control_plane.kubeconfig, namespace, "writer", tmp_path / "writer.kubeconfig",
                                        binaries.kubectl if binaries else "kubectl")  # fmt: skip
    writer = kube_config.new_client_from_config(config_file=str(config))
    with pytest.raises(ApiException) as refused:
        client.AppsV1Api(writer).create_namespaced_deployment(namespace, child)
    assert refused.value.status == 403
    assert "cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on" in str(
        refused.value.body
    )
    rules.append({"apiGroups": [GROUP], "resources": [f"{PLURAL}/finalizers"], "verbs": ["update"]})
    rbac.replace_namespaced_role("writer", namespace, {"metadata": {"name": "writer"}, "rules": rules})
    created = wait_for(lambda: _try_create(writer, namespace, child), 30, what="the child with the finalizers rule")
    assert created.metadata.owner_references[0].block_owner_deletion is True
    assert apps.read_namespaced_deployment("child", namespace).metadata.owner_references[0].uid == reference["uid"]


def _try_create(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> Any:
    try:
        return client.AppsV1Api(api).create_namespaced_deployment(namespace, body)
    except ApiException as error:
        if error.status == 403:  # the Role change has not reached the authorizer's cache yet
            return None
        raise
