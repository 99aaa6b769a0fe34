"""`gpu.type: auto` on the real control plane: the kwok fleet's GPU labels decide, the choice is kept, a spec change
chooses again, and a refusal names the cheapest near miss."""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from llmop.api.spec import GROUP, PLURAL, VERSION, LLMDeploymentSpec
from llmop.sizing.choose import choose
from llmop_dev.localcluster.nodes import DEFAULT_FLEET, NodePool, create_nodes, node_manifest
from support.operator import condition, events_for, get_llmd, llmd_api, wait_for

# Hand-checked against the default price table: anywhere, A100-40GB is cheapest per token for this spec
# ($0.91 per million output tokens at SLO capacity, A100-80GB $0.97, A10G $3.62); the fleet has no A100-40GB.
CANDIDATES = ["A100-40GB", "A100-80GB", "A10G"]
FLEET = {pool.gpu: pool.gpus_per_node for pool in DEFAULT_FLEET if pool.gpu}
EXTRA_POOL = NodePool("A100-40GB", 1, 8, "p4d.24xlarge", cpu="96", memory="1152Gi")


def _body(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LLMDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": "meta-llama/Llama-3.1-8B-Instruct"},
            "gpu": {"type": "auto", "candidates": CANDIDATES},
            "maxModelLen": 8192,
            "replicas": {"min": 1, "max": 2},
            "slo": {"decodeLatency": {"targetMs": 40}},
            "autoscaling": {"enabled": False},
            **spec,
        },
    }


def _choice(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    body = get_llmd(kube, namespace, name)
    return ((body or {}).get("status") or {}).get("gpuChoice")


def _node_selector(kube: client.ApiClient, namespace: str, name: str) -> str | None:
    try:
        deployment = client.AppsV1Api(kube).read_namespaced_deployment(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return (deployment.spec.template.spec.node_selector or {}).get("nvidia.com/gpu.product")


def test_auto_picks_the_cheapest_schedulable_gpu_keeps_it_and_chooses_again_on_a_spec_change(
    control_plane: Any, crd: str, namespace: str, kube: client.ApiClient, operator: Any
) -> None:
    body = _body("auto-gpu")
    spec = LLMDeploymentSpec.model_validate(body["spec"])
    expected = choose(spec, "auto-gpu", schedulable=FLEET).choice
    assert choose(spec, "auto-gpu").choice.chosen.candidate.gpu == "A100-40GB"  # type: ignore[union-attr]
    assert expected is not None and expected.chosen.candidate.gpu == "A100-80GB"
    llmd_api(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    chosen = wait_for(lambda: _choice(kube, namespace, "auto-gpu"), 60, what="status.gpuChoice")
    assert {k: chosen[k] for k in ("gpuType", "quantization", "tensorParallel", "engine")} == {
        "gpuType": "A100-80GB",
        "quantization": "none",
        "tensorParallel": 1,
        "engine": "vllm",
    }
    assert chosen["runnerUp"]["gpuType"] == "A10G"
    assert chosen == expected.to_status() | {"runnerUp": chosen["runnerUp"]}
    wait_for(lambda: _node_selector(kube, namespace, "auto-gpu") == "NVIDIA-A100-SXM4-80GB", 60, what="selector")
    wait_for(
        lambda: (c := condition(get_llmd(kube, namespace, "auto-gpu"), "Available")) and c["status"] == "True",
        90,
        what="Available on the A100-80GB node",
    )
    chosen_events = [e for e in events_for(kube, namespace, "auto-gpu") if e["reason"] == "GPUChosen"]
    assert len(chosen_events) == 1 and chosen_events[0]["message"] == expected.message()

    core = client.CoreV1Api(kube)
    extra = node_manifest(EXTRA_POOL, 0)
    create_nodes(core, [extra])  # the cheapest type now has a node
    try:
        time.sleep(8)  # several resync passes (LLMOP_RESYNC_SECONDS=2): a running deployment does not move
        assert _choice(kube, namespace, "auto-gpu") == chosen
        assert _node_selector(kube, namespace, "auto-gpu") == "NVIDIA-A100-SXM4-80GB"
        assert [e["reason"] for e in events_for(kube, namespace, "auto-gpu")].count("GPUChosen") == 1
        patch = {"spec": {"maxModelLen": 4096}}  # a spec change: chosen again, with the new node
        llmd_api(kube).patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "auto-gpu", patch)
        again = wait_for(
            lambda: (c := _choice(kube, namespace, "auto-gpu")) and c["gpuType"] == "A100-40GB" and c,
            60,
            what="gpuChoice A100-40GB after the spec change",
        )
        assert again["runnerUp"]["gpuType"] == "A100-80GB"
        wait_for(lambda: _node_selector(kube, namespace, "auto-gpu") == "NVIDIA-A100-SXM4-40GB", 60, what="moved")
    finally:
        core.delete_node(extra["metadata"]["name"])


def test_a_refused_auto_names_the_cheapest_near_miss_in_status_and_an_event(
    control_plane: Any, crd: str, namespace: str, kube: client.ApiClient, operator: Any
) -> None:
    body = _body(
        "too-slow",
        model={"name": "meta-llama/Llama-3.1-70B-Instruct"},
        gpu={"type": "auto", "candidates": ["L4"]},
        slo={"decodeLatency": {"targetMs": 50}},
    )
    llmd_api(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    planned = wait_for(
        lambda: (c := condition(get_llmd(kube, namespace, "too-slow"), "Planned")) and c["status"] == "False" and c,
        60,
        what="Planned=False",
    )
    message = (
        "spec.gpu.type: auto: none of 4 candidates fits, meets the SLO and schedules; cheapest near miss: "
        "8 x L4 none vllm: decode floor 79.2 ms is above the 50 ms SLO; it would fit with: raise "
        "spec.slo.decodeLatency.targetMs to 79.2 or more"
    )
    assert planned["reason"] == "PlanRefused" and planned["message"] == message
    # The Event is posted after the status patch: under load it lands a moment later.
    wait_for(
        lambda: any(
            e["reason"] == "PlanRefused" and e["message"] == message for e in events_for(kube, namespace, "too-slow")
        ),
        30,
        what="the PlanRefused Event",
    )
    assert _node_selector(kube, namespace, "too-slow") is None
