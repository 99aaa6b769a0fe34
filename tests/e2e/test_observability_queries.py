"""Every dashboard query and alert rule parses and returns data from the e2e Prometheus while the simulator runs."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml
from kubernetes import client

from llmop.api.spec import GROUP, PLURAL, VERSION
from llmop_dev.localcluster.prometheus import query
from llmop_dev.localcluster.stack import REPO_ROOT, LocalStack
from llmop_dev.observability import all_expressions
from support.operator import condition, get_llmd, wait_for

DEPLOYMENTS = {
    "llama31-8b-fp8": REPO_ROOT / "examples/llama31-8b-h100-fp8-vllm.yaml",
    "llama31-8b-tgi": REPO_ROOT / "examples/llama31-8b-h100-fp8-tgi.yaml",
    "nf4-on-vllm": REPO_ROOT / "examples/invalid/nf4-on-vllm.yaml",
}
# Alerts that must stay quiet on a healthy stack: an empty answer is the right answer.
QUIET = {
    "rule LLMOpOperatorDown",
    "rule LLMDeploymentDecodeLatencyBudgetBurnFast",
    "rule LLMDeploymentDecodeLatencyBudgetBurnSlow",
    "rule LLMDeploymentMetricsMissing",
    "rule LLMDeploymentReplicasBelowDesired",
}


def _metrics_flowing(kube: client.ApiClient, namespace: str) -> bool:
    for name in ("llama31-8b-fp8", "llama31-8b-tgi"):
        c = condition(get_llmd(kube, namespace, name), "MetricsAvailable")
        if not c or c["status"] != "True":
            return False
    return True


@pytest.mark.timeout(600)
def test_every_panel_and_rule_returns_data(stack: LocalStack, kube: client.ApiClient, namespace: str) -> None:
    api = client.CustomObjectsApi(kube)
    for path in DEPLOYMENTS.values():
        doc: dict[str, Any] = yaml.safe_load(path.read_text())
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)
    for name in ("llama31-8b-fp8", "llama31-8b-tgi"):
        wait_for(lambda n=name: stack.set_load(namespace, n, 3.0, 100.0), 90, what=f"simulated {name}")
    wait_for(lambda: _metrics_flowing(kube, namespace), 180, what="MetricsAvailable=True on both engines")
    time.sleep(6)  # a few rule evaluations after the first complete windows
    assert stack.prometheus is not None
    url = stack.prometheus.url
    empty: list[str] = []
    for where, expr in all_expressions():
        result = query(url, expr)  # raises on a PromQL error: every expression must parse and evaluate
        if where in QUIET:
            assert result == [], f"{where} fires on a healthy stack: {result[:2]}"
        elif not result:
            empty.append(where)
    assert not empty, f"no data for: {empty}"
    refused = query(url, 'sum by (llmdeployment) (llmop_plan_refusals_total{llmdeployment="nf4-on-vllm"})')
    assert refused and float(refused[0]["value"][1]) >= 1
    # Prometheus 2.x negotiated OpenMetrics with the simulated vLLM pods, which escaped `:` as vLLM's
    # prometheus_client does: every panel and rule above read the `vllm_` names.
    for engine_metric in ("vllm_inter_token_latency_seconds_bucket", "tgi_batch_inference_duration_bucket"):
        series = query(url, f'count({engine_metric}{{namespace="{namespace}"}})')
        assert series and float(series[0]["value"][1]) > 0, engine_metric
    assert query(url, f'count({{__name__=~"vllm:.+", namespace="{namespace}"}})') == []
