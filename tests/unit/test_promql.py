"""PromQL templates: one place, per engine and version, rendered per LLMDeployment (parsed for real in e2e)."""

from __future__ import annotations

import pytest

from llmop.autoscale.metrics import bucket_quantile, resolve_quantile
from llmop.autoscale.promql import query, query_templates, render, selector

NAMES = {"decode_latency_quantile", "decode_latency_buckets", "decode_samples", "running", "waiting",
         "ttft_quantile", "request_rate", "mean_prompt_tokens", "mean_output_tokens", "waiting_growth"}  # fmt: skip


@pytest.mark.parametrize("engine", ["vllm", "tgi"])
def test_every_query_is_selected_by_deployment_and_balanced(engine: str) -> None:
    templates = dict(query_templates(engine))
    assert {name.split(":", 1)[1] for name in templates} >= NAMES
    for name, template in templates.items():
        expr = render(template, selector("ml", "llama"), 120, 0.95)
        assert "$" not in expr and expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}")
        assert expr.count('llmdeployment="llama"') == expr.count('namespace="ml"') >= 1, name


def test_vllm_latency_falls_back_to_the_pre_0_11_name_and_tgi_uses_decode_steps() -> None:
    vllm = query("vllm", "decode_latency_quantile").render("ml", "x", 120, 0.95)
    assert vllm.startswith("histogram_quantile(0.95, sum by (le, namespace, llmdeployment) (")
    assert (
        "rate(vllm:inter_token_latency_seconds_bucket{" in vllm
        and " or rate(vllm:time_per_output_token_seconds_bucket{" in vllm
    )
    assert "[120s]" in vllm
    tgi = query("tgi", "decode_latency_quantile").render("ml", "x", 60, 0.99)
    assert 'tgi_batch_inference_duration_bucket{method="decode",namespace="ml"' in tgi and "0.99" in tgi


def test_kv_usage_name_follows_the_version() -> None:
    assert "gpu_cache_usage_perc" in query("vllm", "kv_usage", "0.11.0").template
    assert "gpu_cache_usage_perc" not in query("vllm", "kv_usage", "0.33.0").template


def test_label_values_are_escaped() -> None:
    assert selector('a"b', "c\\d") == 'namespace="a\\"b",llmdeployment="c\\\\d"'


def test_quantile_matches_prometheus_algorithm_and_flags_the_first_bucket() -> None:
    buckets = [(0.01, 0.0), (0.025, 50.0), (0.05, 100.0), (float("inf"), 100.0)]
    assert bucket_quantile(0.5, buckets) == pytest.approx(0.025)
    assert bucket_quantile(0.95, buckets) == pytest.approx(0.025 + 0.025 * 45 / 50)
    value, below = resolve_quantile(0.95, [(0.01, 100.0), (0.025, 100.0), (float("inf"), 100.0)])
    assert value == 0.01 and below
    assert bucket_quantile(0.95, [(0.01, 0.0), (float("inf"), 0.0)]) != bucket_quantile(0.5, buckets)  # NaN
