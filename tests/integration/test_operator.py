"""The operator on the real control plane: admission, create, status, drift, update, refusal, delete, restart."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from llmop.api.spec import GROUP, PLURAL, VERSION
from support.operator import ROOT, condition, events_for, get_llmd, kubectl, llmd_api, wait_for

EXAMPLE = ROOT / "examples/llama31-8b-h100-fp8-vllm.yaml"


def _example(path: Path = EXAMPLE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _create(kube: client.ApiClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return llmd_api(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def _patch_spec(kube: client.ApiClient, namespace: str, name: str, spec: dict[str, Any]) -> None:
    llmd_api(kube).patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, {"spec": spec})


def _deployment(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    apps = client.AppsV1Api(kube)
    try:
        return json.loads(apps.read_namespaced_deployment(name, namespace, _preload_content=False).data)
    except client.exceptions.ApiException as error:
        if error.status == 404:
            return None
        raise


def _available(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    body = get_llmd(kube, namespace, name)
    ok = condition(body, "Available")
    return body if ok and ok["status"] == "True" and body["status"].get("phase") == "Ready" else None


def _deploy_example(kube: client.ApiClient, namespace: str) -> str:
    """Create the H100 fp8 example and wait until it is Available; return its name."""
    doc = _example()
    _create(kube, namespace, doc)
    wait_for(lambda: _available(kube, namespace, doc["metadata"]["name"]), 90, what="Available")
    return str(doc["metadata"]["name"])


def _planned_args(path: Path) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "llmop.cli", "plan", "-f", str(path), "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return json.loads(out)["plan"]["args"]


def test_examples_apply_and_admission_refuses_bad_input(control_plane: Any, crd: str, namespace: str) -> None:
    out = kubectl(control_plane, "apply", "-n", namespace, "-f", str(ROOT / "examples"))
    assert out.count("created") == len(list((ROOT / "examples").glob("*.yaml")))
    bad = {
        "replicas: {min: 5, max: 2}": "replicas.min must be <= replicas.max",
        "gpu: {type: V100}": 'Unsupported value: "V100"',
        "gpu: {type: L4, count: many}": "count must be auto or an integer from 1 to 8",
        "quantization: int3": 'Unsupported value: "int3"',
        "maxModelLen: 10": "should be greater than or equal to 128",
    }
    for patch, message in bad.items():
        doc = _example()
        doc["metadata"]["name"] = "bad"
        doc["spec"].update(yaml.safe_load(patch))
        out = kubectl(control_plane, "apply", "-n", namespace, "-f", "-", input_text=yaml.safe_dump(doc), check=False)
        assert message in out, (patch, out)
    missing = {
        "apiVersion": "llmop.io/v1alpha1",
        "kind": "LLMDeployment",
        "metadata": {"name": "bad"},
        "spec": {"gpu": {"type": "L4"}},
    }
    out = kubectl(control_plane, "apply", "-n", namespace, "-f", "-", input_text=yaml.safe_dump(missing), check=False)
    assert "spec.model: Required value" in out
    columns = kubectl(control_plane, "get", "llmd", "-n", namespace)
    rows = columns.strip().split("\n")
    assert rows[0].split() == ["NAME", "GPU", "REPLICAS", "READY", "TPOT", "SLO", "SLOMET", "PHASE", "AGE"]
    assert len(rows) == 1 + len(list((ROOT / "examples").glob("*.yaml")))
    assert max(len(row.rstrip()) for row in rows) < 100, columns  # the examples' longest model id is in -o wide
    wide = kubectl(control_plane, "get", "llmd", "-n", namespace, "-o", "wide").split("\n")[0].split()
    assert wide == ["NAME", "MODEL", "ENGINE", "QUANT", "GPU", "REPLICAS", "DESIRED", "READY", "TPOT", "PCTL", "SLO",
                    "SLOMET", "PHASE", "REASON", "AGE"]  # fmt: skip


def test_create_schedules_on_matching_gpus_and_reports_available(
    control_plane: Any, crd: str, namespace: str, kube: client.ApiClient, operator: Any
) -> None:
    doc = _example()
    name = doc["metadata"]["name"]
    _create(kube, namespace, doc)
    body = wait_for(lambda: _available(kube, namespace, name), 90, what="Available=True")
    deployment = _deployment(kube, namespace, name)
    assert deployment is not None
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == _planned_args(EXAMPLE)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    owner = deployment["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "LLMDeployment" and owner["uid"] == body["metadata"]["uid"] and owner["controller"]
    core = client.CoreV1Api(kube)
    assert core.read_namespaced_service(name, namespace).spec.ports[0].port == 8000
    assert client.PolicyV1Api(kube).read_namespaced_pod_disruption_budget(name, namespace).spec.max_unavailable == 1
    pods = core.list_namespaced_pod(namespace, label_selector=f"llmop.io/llmdeployment={name}").items
    assert pods and all(p.status.phase == "Running" for p in pods)
    for pod in pods:
        node = core.read_node(pod.spec.node_name)
        assert node.metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    status = body["status"]
    assert status["observedGeneration"] == body["metadata"]["generation"]
    assert status["plan"]["attentionBackend"] == "flash-attention-3" and status["plan"]["tensorParallel"] == 1
    assert status["readyReplicas"] == 1 and status["replicas"] == 1
    assert condition(body, "Planned")["status"] == "True"
    reasons = {e["reason"] for e in events_for(kube, namespace, name)}
    assert {"Planned", "Available"} <= reasons


def test_refused_spec_creates_nothing_and_keeps_the_previous_generation_running(
    control_plane: Any, crd: str, namespace: str, kube: client.ApiClient, operator: Any
) -> None:
    refused = _example(ROOT / "examples/invalid/nf4-on-vllm.yaml")
    _create(kube, namespace, refused)
    body = wait_for(
        lambda: (b := get_llmd(kube, namespace, "nf4-on-vllm")) and condition(b, "Planned") and b,
        60,
        what="Planned condition",
    )
    planned = condition(body, "Planned")
    assert planned["status"] == "False" and planned["reason"] == "PlanRefused"
    assert "removed in 0.28.0" in planned["message"] and body["status"]["phase"] == "Failed"
    assert _deployment(kube, namespace, "nf4-on-vllm") is None
    # the Event is posted after the status is written: wait for it rather than read it at once
    warnings = wait_for(
        lambda: [e for e in events_for(kube, namespace, "nf4-on-vllm") if e["type"] == "Warning"],
        30,
        what="a Warning Event",
    )
    assert warnings[0]["reason"] == "PlanRefused"

    good = _example()
    name = good["metadata"]["name"]
    _create(kube, namespace, good)
    wait_for(lambda: _available(kube, namespace, name), 90, what="Available")
    before = _deployment(kube, namespace, name)
    _patch_spec(kube, namespace, name, {"quantization": "nf4"})
    wait_for(
        lambda: (c := condition(get_llmd(kube, namespace, name), "Planned")) and c["status"] == "False",
        60,
        what="refusal of the update",
    )
    after = _deployment(kube, namespace, name)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"]["template"] == before["spec"]["template"]
    assert condition(get_llmd(kube, namespace, name), "Available")["status"] == "True"
    assert operator.alive()


def test_drift_is_reverted_and_foreign_fields_survive(
    control_plane: Any, crd: str, namespace: str, kube: client.ApiClient, operator: Any
) -> None:
    name = _deploy_example(kube, namespace)
    kubectl(control_plane, "scale", "deployment", name, "-n", namespace, "--replicas=3")
    kubectl(control_plane, "annotate", "deployment", name, "-n", namespace, "team.example.com/owner=sre")
    kubectl(
        control_plane,
        "patch",
        "deployment",
        name,
        "-n",
        namespace,
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"evil:latest"}]',
    )

    def healed() -> dict[str, Any] | None:
        d = _deployment(kube, namespace, name)
        c = d["spec"]["template"]["spec"]["containers"][0]
        return d if d["spec"]["replicas"] == 1 and c["image"].startswith("ghcr.io/llmop/vllm:") else None

    deployment = wait_for(healed, 60, what="drift reverted")
    assert deployment["metadata"]["annotations"]["team.example.com/owner"] == "sre"


def test_spec_changes_roll_out_only_when_pods_change(
    control_plane: Any, crd: str, namespace: str, kube: client.ApiClient, operator: Any
) -> None:
    name = _deploy_example(kube, namespace)
    first = _deployment(kube, namespace, name)
    _patch_spec(kube, namespace, name, {"slo": {"decodeLatency": {"targetMs": 60}}, "replicas": {"max": 6}})
    wait_for(
        lambda: get_llmd(kube, namespace, name)["status"].get("observedGeneration") == 2,
        60,
        what="generation 2 observed",
    )
    assert _deployment(kube, namespace, name)["metadata"]["generation"] == first["metadata"]["generation"]
    _patch_spec(kube, namespace, name, {"maxModelLen": 4096})
    rolled = wait_for(
        lambda: (
            (d := _deployment(kube, namespace, name))["metadata"]["generation"] > first["metadata"]["generation"] and d
        ),
        60,
        what="rollout",
    )
    args = rolled["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--max-model-len") + 1] == "4096"
    wait_for(lambda: _available(kube, namespace, name), 90, what="Available after rollout")


def test_delete_garbage_collects_children(
    control_plane: Any, crd: str, namespace: str, kube: client.ApiClient, operator: Any
) -> None:
    name = _deploy_example(kube, namespace)
    llmd_api(kube).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    core, policy = client.CoreV1Api(kube), client.PolicyV1Api(kube)
    wait_for(lambda: _deployment(kube, namespace, name) is None, 60, what="Deployment collected")
    wait_for(lambda: not core.list_namespaced_service(namespace).items, 60, what="Service collected")
    wait_for(lambda: not policy.list_namespaced_pod_disruption_budget(namespace).items, 60, what="PDB collected")


def test_no_finalizer_so_deletion_needs_no_running_operator(
    control_plane: Any, crd: str, namespace: str, kube: client.ApiClient, operator: Any
) -> None:
    """The operator keeps nothing on user objects that blocks deletion: with the operator stopped, deleting an
    LLMDeployment still completes and garbage collection takes its children."""
    name = _deploy_example(kube, namespace)
    wait_for(lambda: condition(get_llmd(kube, namespace, name), "MetricsAvailable"), 60, what="autoscaler pass")
    assert not get_llmd(kube, namespace, name)["metadata"].get("finalizers")
    operator.stop()
    try:
        llmd_api(kube).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        wait_for(lambda: get_llmd(kube, namespace, name) is None, 30, what="LLMDeployment gone with no operator")
        wait_for(lambda: _deployment(kube, namespace, name) is None, 60, what="Deployment collected")
    finally:
        operator.start()


def test_operator_restart_writes_nothing_and_rolls_nothing(
    control_plane: Any, crd: str, namespace: str, kube: client.ApiClient, operator: Any
) -> None:
    name = _deploy_example(kube, namespace)
    # steady state: the autoscaler has reported too (no Prometheus here: MetricsAvailable=False, replicas held)
    wait_for(lambda: condition(get_llmd(kube, namespace, name), "MetricsAvailable"), 60, what="autoscaler pass")
    before = _deployment(kube, namespace, name)
    llmd_before = get_llmd(kube, namespace, name)
    operator.restart()
    wait_for(lambda: "resum" in operator.log().lower(), 60, what="resume handled")
    time.sleep(6)  # several resync and autoscaler ticks
    after = _deployment(kube, namespace, name)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    apps = client.AppsV1Api(kube)
    assert len(apps.list_namespaced_deployment(namespace).items) == 1
    assert len(apps.list_namespaced_replica_set(namespace).items) == 1
    llmd_after = get_llmd(kube, namespace, name)
    assert llmd_after["status"]["conditions"] == llmd_before["status"]["conditions"]
    assert llmd_after["status"]["desiredReplicas"] == llmd_before["status"]["desiredReplicas"] == 1
    metrics_condition = condition(llmd_after, "MetricsAvailable")
    assert metrics_condition["status"] == "False" and "no Prometheus URL" in metrics_condition["message"]


def test_unschedulable_gpu_type_shows_in_status(
    control_plane: Any, crd: str, namespace: str, kube: client.ApiClient, operator: Any
) -> None:
    doc = copy.deepcopy(_example())
    doc["metadata"]["name"] = "no-such-nodes"
    doc["spec"]["gpu"] = {"type": "H100-PCIe", "count": 1}  # the local fleet has no H100 PCIe nodes
    _create(kube, namespace, doc)
    body = wait_for(
        lambda: (
            (b := get_llmd(kube, namespace, "no-such-nodes"))
            and (c := condition(b, "Degraded"))
            and c["status"] == "True"
            and b
        ),
        90,
        what="Degraded=True",
    )
    degraded = condition(body, "Degraded")
    assert degraded["reason"] == "Unschedulable" and "node" in degraded["message"]
    assert body["status"]["phase"] == "Pending"
    # The Event is posted after the status patch: under load it lands a moment later.
    wait_for(
        lambda: any(e["reason"] == "Unschedulable" for e in events_for(kube, namespace, "no-such-nodes")),
        30,
        what="the Unschedulable Event",
    )
