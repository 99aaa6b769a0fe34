"""The simulator's /metrics negotiates like vLLM's exporter (prometheus_client 0.26), checked against the real one."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from llmop_dev.replay.exporter import render_openmetrics, render_text, wants_openmetrics

# What Prometheus 2.42 (Debian's) sends by default; text 0.0.4 only; Prometheus 3's default.
PROMETHEUS_2 = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
TEXT_ONLY = "text/plain;version=0.0.4"
PROMETHEUS_3 = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8,text/plain;version=1.0.0;escaping=allow-utf-8;"
    "q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
)

Sample = tuple[str, tuple[tuple[str, str], ...], float]


def _real_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge("vllm:num_requests_running", "", ["model_name"], registry=registry).labels("m").set(3)
    Counter("vllm:generation_tokens", "", ["model_name"], registry=registry).labels("m").inc(5)
    itl = Histogram("vllm:inter_token_latency_seconds", "", ["model_name"], buckets=[0.01, 0.025], registry=registry)
    itl.labels("m").observe(0.02)
    return registry


OURS = [
    ("vllm:num_requests_running", {"model_name": "m"}, 3.0),
    ("vllm:generation_tokens_total", {"model_name": "m"}, 5.0),
    ("vllm:inter_token_latency_seconds_bucket", {"model_name": "m", "le": "0.01"}, 0.0),
    ("vllm:inter_token_latency_seconds_bucket", {"model_name": "m", "le": "0.025"}, 1.0),
    ("vllm:inter_token_latency_seconds_bucket", {"model_name": "m", "le": "+Inf"}, 1.0),
    ("vllm:inter_token_latency_seconds_count", {"model_name": "m"}, 1.0),
    ("vllm:inter_token_latency_seconds_sum", {"model_name": "m"}, 0.02),
]


def _samples(families: object) -> set[Sample]:
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in families  # type: ignore[attr-defined]
        for s in family.samples
        if not s.name.endswith("_created")
    }


@pytest.mark.parametrize("accept", [PROMETHEUS_2, TEXT_ONLY, PROMETHEUS_3, ""])
def test_the_format_is_chosen_as_prometheus_client_chooses_it(accept: str) -> None:
    _, content_type = choose_encoder(accept)
    real_escapes = content_type.startswith("application/openmetrics-text") and "escaping=underscores" in content_type
    assert wants_openmetrics(accept) is real_escapes
    assert real_escapes is (accept == PROMETHEUS_2)


def test_openmetrics_with_escaped_names_is_what_prometheus_client_writes() -> None:
    encoder, _ = choose_encoder(PROMETHEUS_2)
    real = _samples(parse_openmetrics(encoder(_real_registry()).decode()))
    ours = render_openmetrics(OURS)
    assert ours.endswith("# EOF\n")
    assert _samples(parse_openmetrics(ours)) == real
    assert {name for name, _, _ in real} == {
        "vllm_num_requests_running", "vllm_generation_tokens_total", "vllm_inter_token_latency_seconds_bucket",
        "vllm_inter_token_latency_seconds_count", "vllm_inter_token_latency_seconds_sum",
    }  # fmt: skip


def test_text_keeps_the_colons_as_prometheus_client_writes_them() -> None:
    encoder, _ = choose_encoder(TEXT_ONLY)
    real = _samples(parse_text(encoder(_real_registry()).decode()))
    assert _samples(parse_text(render_text(OURS))) == real
