"""The active probe fallback on the real stack: an idle deployment (no tokens for Prometheus) is measured by probing."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from llmop.api.spec import GROUP, PLURAL, VERSION
from llmop_dev.localcluster.samples import h100_llmdeployment
from llmop_dev.localcluster.stack import LocalStack
from support.operator import condition, free_port, get_llmd, wait_for

NAME = "idle"
DOWN_WINDOW_S = 20.0


def _llmd(endpoint: str) -> dict[str, Any]:
    probe = {"enabled": True, "endpoint": endpoint, "interval": "2s"}
    windows = {"scaleUpStabilization": "10s", "scaleDownStabilization": "20s", "probe": probe}
    return h100_llmdeployment(NAME, min_replicas=2, max_replicas=3, max_model_len=None, autoscaling=windows)


def _status(kube: client.ApiClient, namespace: str) -> dict[str, Any]:
    return (get_llmd(kube, namespace, NAME) or {}).get("status") or {}


def _patch(kube: client.ApiClient, namespace: str, spec: dict[str, Any]) -> None:
    client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, NAME, {"spec": spec}
    )


def _ready(kube: client.ApiClient, namespace: str) -> int:
    try:
        return client.AppsV1Api(kube).read_namespaced_deployment(NAME, namespace).status.ready_replicas or 0
    except ApiException as error:
        if error.status == 404:  # the operator has not created it yet
            return 0
        raise


def _metrics(kube: client.ApiClient, namespace: str) -> dict[str, Any]:
    return condition(get_llmd(kube, namespace, NAME), "MetricsAvailable") or {}


@pytest.mark.timeout(600)
def test_idle_deployment_is_probed_holds_when_the_probe_fails_and_scales_in_on_its_latency(
    stack: LocalStack, kube: client.ApiClient, namespace: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client.CustomObjectsApi(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _llmd(dead))
    wait_for(lambda: _ready(kube, namespace) == 2, 120, what="two replicas Ready")
    wait_for(lambda: stack.set_load(namespace, NAME, 0.0), 30, what="simulator knows the deployment (no load)")

    # 1. No traffic and the probe cannot connect: fail-static (MetricsAvailable=False), even once min drops to 1.
    wait_for(lambda: (c := _metrics(kube, namespace)).get("status") == "False" and "active probe" in c["message"],
             90, what="MetricsAvailable=False naming the failed probe")  # fmt: skip
    _patch(kube, namespace, {"replicas": {"min": 1, "max": 3}})
    time.sleep(DOWN_WINDOW_S + 10)
    assert _status(kube, namespace)["desiredReplicas"] == 2, "scaled on a failed probe"

    # 2. The probe reaches the engine (the simulator's streaming API): its TPOT is the latency the policy judges.
    engine = f"{stack.sim_url}/d/{namespace}/{NAME}"
    _patch(kube, namespace, {"autoscaling": {"probe": {"enabled": True, "endpoint": engine}}})
    wait_for(lambda: _metrics(kube, namespace).get("reason") == "ActiveProbe", 60, what="MetricsAvailable by probe")
    metrics = _metrics(kube, namespace)
    assert metrics["status"] == "True" and "tokens in the window" in metrics["message"], metrics
    slo = wait_for(lambda: (c := condition(get_llmd(kube, namespace, NAME), "SLOMet")) and c["status"] == "True" and c,
                   60, what="SLOMet=True from the probe")  # fmt: skip
    latency = _status(kube, namespace)["decodeLatency"]
    assert 1.0 <= latency["observedMs"] <= 50.0 and "p95Ms" not in latency and "percentile" not in latency, latency
    print(f"probe: {metrics['message']}; SLOMet: {slo['message']}")

    # 3. Idle with a healthy probe: one step down to min after the down window, with the probe in the reason.
    wait_for(lambda: _status(kube, namespace)["desiredReplicas"] == 1, 120, what="scale-in to min")
    last = _status(kube, namespace)["lastScale"]
    assert last["from"] == 2 and last["to"] == 1 and "probe TPOT" in last["reason"], last

    # 4. Steady state is cheap: with nothing changing, the status is not rewritten every 2 s autoscaler tick. The
    # scale-in settles first (the second pod gone, the status counting one replica): until then the status follows it.
    def settled() -> bool:
        status = _status(kube, namespace)
        pods = client.CoreV1Api(kube).list_namespaced_pod(namespace, label_selector=status["selector"]).items
        return len(pods) == 1 and status.get("replicas") == 1 and status.get("readyReplicas") == 1

    wait_for(settled, 60, what="the scale-in settled")
    time.sleep(4)
    versions = set()
    for _ in range(30):
        body = get_llmd(kube, namespace, NAME) or {}
        assert body["status"]["desiredReplicas"] == 1
        versions.add(body["metadata"]["resourceVersion"])
        time.sleep(1)
    assert len(versions) <= 3, f"{len(versions) - 1} writes in 30 s of steady state (15 ticks)"
    print(f"steady state: {len(versions) - 1} status writes in 30 s (15 autoscaler ticks)")
