"""PromQL templates: one place, per engine and version, rendered per LLMDeployment (parsed for real in e2e)."""

from __future__ import annotations

import math

import pytest

from llmop.autoscale.metrics import bucket_quantile, resolve_quantile
from llmop.engines import query, query_templates
from llmop.engines.promql import render, selector

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


def test_vllm_latency_reads_both_name_forms_and_the_pre_0_11_name_and_tgi_reads_its_batch_steps() -> None:
    vllm = query("vllm", "decode_latency_quantile").render("ml", "x", 120, 0.95)
    sel = 'namespace="ml",llmdeployment="x"'
    one_form = (
        "histogram_quantile(0.95, sum by (le, namespace, llmdeployment) "
        f"(rate(vllm:inter_token_latency_seconds_bucket{{{sel}}}[120s]) "
        f"or rate(vllm:time_per_output_token_seconds_bucket{{{sel}}}[120s])))"
    )
    # the names as vLLM writes them, or else as prometheus_client escapes them for an OpenMetrics scrape
    assert vllm == f"({one_form}) or ({one_form.replace('vllm:', 'vllm_')})"
    tgi = query("tgi", "decode_latency_quantile").render("ml", "x", 60, 0.99)
    assert tgi == (
        "histogram_quantile(0.99, sum by (le, namespace, llmdeployment) "
        '(rate(tgi_batch_inference_duration_bucket{namespace="ml",llmdeployment="x"}[60s])))'
    )  # decode and prefill steps: the running sequences wait through both
    samples = query("tgi", "decode_samples").render("ml", "x", 60, 0.99)
    assert samples == (
        "sum by (namespace, llmdeployment) "
        '(increase(tgi_batch_inference_duration_count{namespace="ml",llmdeployment="x"}[60s]))'
    )


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
    assert math.isnan(bucket_quantile(0.95, [(0.01, 0.0), (float("inf"), 0.0)]))


def _runner(answers: dict[str, list[dict[str, object]]]):  # type: ignore[no-untyped-def]
    """A PromQL runner answering by the metric a query reads (first match in `answers`), else no series."""

    def run(expr: str) -> list[dict[str, object]]:
        return next((rows for metric, rows in answers.items() if metric in expr), [])

    return run


def test_idle_tgi_pod_without_gauges_reads_as_no_traffic_not_missing_data() -> None:
    from llmop.autoscale.metrics import PrometheusMetrics

    idle = PrometheusMetrics("t", runner=_runner({}), clock=lambda: 7.0).observe("ml", "x", "tgi", None, 95, 60)
    assert (idle.error, idle.running, idle.waiting, idle.latency_ms, idle.samples, idle.observed_at) == (
        None, 0.0, 0.0, None, 0.0, 7.0
    )  # fmt: skip
    vllm = PrometheusMetrics("t", runner=_runner({})).observe("ml", "x", "vllm", None, 95, 60)
    assert vllm.error == "no running/waiting series for ml/x in Prometheus (no vllm pod scraped?)"
    bucket = {"metric": {"le": "+Inf"}, "value": [0, "0.5"]}
    served = _runner({"tgi_batch_inference_duration_bucket": [bucket]})
    gone = PrometheusMetrics("t", runner=served).observe("ml", "x", "tgi", None, 95, 60)
    assert gone.error == "no running/waiting series for ml/x in Prometheus (no tgi pod scraped?)"
    finished = _runner({"tgi_request_success": [{"metric": {}, "value": [0, "0"]}]})
    assert PrometheusMetrics("t", runner=finished).observe("ml", "x", "tgi").error is not None


def test_prometheus_failure_stays_an_error_for_tgi() -> None:
    from llmop.autoscale.metrics import PrometheusMetrics

    def broken(expr: str) -> list[dict[str, object]]:
        raise ConnectionError("refused")

    observation = PrometheusMetrics("http://p", runner=broken).observe("ml", "x", "tgi")
    assert observation.error == "prometheus http://p: ConnectionError: refused" and observation.running is None


def test_tgi_decode_latency_is_the_batch_steps_quantile() -> None:
    from llmop.autoscale.metrics import PrometheusMetrics

    edges = ["0.0225", "0.03375", "+Inf"]  # step seconds; 10 steps/s over 60 s, 9 of them <= 33.75 ms
    rows = [{"metric": {"le": le}, "value": [0, str(v)]} for le, v in zip(edges, (0.0, 9.0, 10.0), strict=True)]
    gauges = {"tgi_batch_current_size": [{"metric": {}, "value": [0, "12"]}],
              "tgi_queue_size": [{"metric": {}, "value": [0, "3"]}]}  # fmt: skip
    runner = _runner({"tgi_batch_inference_duration_bucket": rows, **gauges})
    observation = PrometheusMetrics("t", runner=runner).observe("ml", "x", "tgi", None, 50, 60)
    assert observation.error is None and (observation.running, observation.waiting) == (12.0, 3.0)
    assert observation.samples == 600.0
    assert observation.latency_ms == pytest.approx((0.0225 + 0.01125 * 5 / 9) * 1000)


def test_the_mean_decode_latency_is_read_only_from_a_window_with_samples() -> None:
    from llmop.autoscale.metrics import PrometheusMetrics

    gauges = {"tgi_batch_current_size": [{"metric": {}, "value": [0, "12"]}],
              "tgi_queue_size": [{"metric": {}, "value": [0, "0"]}],
              "tgi_batch_inference_duration_sum": [{"metric": {}, "value": [0, "0.0312"]}]}  # fmt: skip

    def observed(total: str) -> float | None:
        rows = [{"metric": {"le": "0.05"}, "value": [0, total]}, {"metric": {"le": "+Inf"}, "value": [0, total]}]
        runner = _runner({"tgi_batch_inference_duration_bucket": rows, **gauges})
        return PrometheusMetrics("t", runner=runner).observe("ml", "x", "tgi", None, 95, 60).mean_latency_ms

    assert observed("10") == pytest.approx(31.2, rel=1e-12)  # seconds to ms
    assert observed("0") is None  # no steps in the window: a mean left over from a stale series is not read
