"""All PromQL llmop runs, per engine and version, as named templates rendered per LLMDeployment."""

from __future__ import annotations

from dataclasses import dataclass
from string import Template

from llmop.catalog.versions import parse_version

# The chart's PodMonitor copies the pod label `llmop.io/llmdeployment` to `llmdeployment`; the simulator
# emits the same labels. Every query aggregates to one series per (namespace, llmdeployment).
DEPLOYMENT_LABEL = "llmdeployment"
BY = f"namespace, {DEPLOYMENT_LABEL}"

# vLLM ITL/TPOT buckets (identical 0.11 -> 0.33): nothing resolves below the first edge (10 ms).
VLLM_ITL_BUCKETS_S: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
VLLM_TTFT_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
    160.0, 640.0, 2560.0,
)  # fmt: skip


# TGI duration histograms: 35 geometric buckets from 0.0001 * 1.5 with ratio 1.5 (router/src/server.rs).
def _tgi_duration_buckets(count: int = 35, start: float = 0.0001, ratio: float = 1.5) -> tuple[float, ...]:
    """Multiplied in a loop as the router does (`value *= 1.5`), so the `le` strings match a real scrape."""
    edges: list[float] = []
    value = start
    for _ in range(count):
        value *= ratio
        edges.append(value)
    return tuple(edges)


TGI_DURATION_BUCKETS_S: tuple[float, ...] = _tgi_duration_buckets()


@dataclass(frozen=True)
class Query:
    """A named PromQL template: `${selector}`, `${window}` (the SLO window), `${rate_window}` (short, for load
    rates that must follow a step) and `${quantile}` are filled by `render`."""

    name: str
    template: str
    unit: str
    help: str

    def render(self, namespace: str, name: str, window_s: float = 120.0, quantile: float = 0.95) -> str:
        return render(self.template, selector(namespace, name), window_s, quantile)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def selector(namespace: str, name: str) -> str:
    """Label matchers (without braces) selecting one LLMDeployment's series."""
    return f'namespace="{_escape(namespace)}",{DEPLOYMENT_LABEL}="{_escape(name)}"'


def duration(window_s: float) -> str:
    """A PromQL range duration in whole seconds (at least 1s)."""
    return f"{max(round(window_s), 1)}s"


RATE_WINDOW_S = 60.0


def render(
    template: str,
    selector_text: str,
    window_s: float = 120.0,
    quantile: float = 0.95,
    rate_window_s: float = RATE_WINDOW_S,
) -> str:
    """Fill a template; `selector_text` is the inside of a label matcher, e.g. from `selector()`."""
    return Template(template).substitute(
        selector=selector_text,
        window=duration(window_s),
        rate_window=duration(rate_window_s),
        quantile=f"{quantile:g}",
    )


def _quantile_of(bucket_expr: str) -> str:
    return f"histogram_quantile(${{quantile}}, sum by (le, {BY}) ({bucket_expr}))"


def _mean_of(metric: str, extra: str = "") -> str:
    matcher = f"{{{extra}${{selector}}}}"
    return (
        f"sum by ({BY}) (rate({metric}_sum{matcher}[${{window}}])) / "
        f"sum by ({BY}) (rate({metric}_count{matcher}[${{window}}]))"
    )


def _vllm(version: tuple[int, int, int]) -> tuple[Query, ...]:
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
            "decode_latency_quantile", _quantile_of(buckets), "s", "p-quantile of inter-token latency over the window"
        ),
        Query(
            "decode_latency_buckets", f"sum by (le) ({buckets})", "1/s", "ITL bucket rates, for the quantile in Python"
        ),
        Query("decode_latency_mean", _mean_of(itl), "s", "mean inter-token latency over the window"),
        Query("decode_samples", f"sum by ({BY}) ({counts})", "tokens", "ITL observations (tokens) in the window"),
        Query("running", f"sum by ({BY}) (vllm:num_requests_running{{${{selector}}}})", "requests", "in the batch"),
        Query("waiting", f"sum by ({BY}) (vllm:num_requests_waiting{{${{selector}}}})", "requests", "queued"),
        Query(
            "waiting_growth",
            f"sum by ({BY}) (deriv(vllm:num_requests_waiting{{${{selector}}}}[${{rate_window}}]))",
            "1/s",
            "how fast the queue grows (arrivals beyond what is admitted)",
        ),
        Query("kv_usage", kv, "ratio", "highest KV-cache usage of any pod (0..1)"),
        Query(
            "ttft_quantile",
            _quantile_of("rate(vllm:time_to_first_token_seconds_bucket{${selector}}[${window}])"),
            "s",
            "p-quantile of time to first token",
        ),
        Query(
            "request_rate",
            f"sum by ({BY}) (rate(vllm:request_success_total{{${{selector}}}}[${{rate_window}}]))",
            "1/s",
            "finished requests per second",
        ),
        Query("mean_prompt_tokens", _mean_of("vllm:request_prompt_tokens"), "tokens", "mean prompt length"),
        Query("mean_output_tokens", _mean_of("vllm:request_generation_tokens"), "tokens", "mean output length"),
    )


def _tgi() -> tuple[Query, ...]:
    # Decode latency: TGI has no per-token histogram. `tgi_batch_inference_duration{method="decode"}` is one sample
    # per batch step whatever the batch, and a step that stalls on a (non-chunked) prefill is a `prefill` sample, so
    # its quantile weights a 2-sequence step like a 200-sequence one and leaves out the prefill stalls the decoding
    # sequences wait through. `tgi_request_mean_time_per_token_duration` (router/src/server.rs: inference time /
    # generated tokens, one sample per request at completion) is the documented per-token series: it includes the
    # stalls and follows the batch each request really saw. It is per request, not per token (a long answer counts
    # once) and lags by a request's duration; `decode_samples` counts requests.
    tpot = "tgi_request_mean_time_per_token_duration"
    buckets = f"rate({tpot}_bucket{{${{selector}}}}[${{window}}])"
    # TGI has no TTFT histogram: queue-time quantile plus the mean prefill step approximates it.
    ttft = (
        _quantile_of("rate(tgi_request_queue_duration_bucket{${selector}}[${window}])")
        + f" + on ({BY}) ("
        + _mean_of("tgi_batch_inference_duration", 'method="prefill",')
        + ")"
    )
    return (
        Query(
            "decode_latency_quantile",
            _quantile_of(buckets),
            "s",
            "p-quantile of per-request mean time per token (includes prefill stalls; observed at completion)",
        ),
        Query("decode_latency_buckets", f"sum by (le) ({buckets})", "1/s", "mean-time-per-token bucket rates"),
        Query("decode_latency_mean", _mean_of(tpot), "s", "mean of the per-request mean time per token"),
        Query(
            "decode_samples",
            f"sum by ({BY}) (increase({tpot}_count{{${{selector}}}}[${{window}}]))",
            "requests",
            "finished requests (time-per-token observations) in the window",
        ),
        Query("running", f"sum by ({BY}) (tgi_batch_current_size{{${{selector}}}})", "requests", "in the batch"),
        Query("waiting", f"sum by ({BY}) (tgi_queue_size{{${{selector}}}})", "requests", "queued"),
        Query(
            "waiting_growth",
            f"sum by ({BY}) (deriv(tgi_queue_size{{${{selector}}}}[${{rate_window}}]))",
            "1/s",
            "how fast the queue grows (arrivals beyond what is admitted)",
        ),
        Query("ttft_quantile", ttft, "s", "p-quantile of queue time plus the mean prefill step"),
        Query(
            "request_rate",
            f"sum by ({BY}) (rate(tgi_request_success{{${{selector}}}}[${{rate_window}}]))",
            "1/s",
            "finished requests per second",
        ),
        Query("mean_prompt_tokens", _mean_of("tgi_request_input_length"), "tokens", "mean prompt length"),
        Query("mean_output_tokens", _mean_of("tgi_request_generated_tokens"), "tokens", "mean output length"),
    )


def queries(engine: str, version: str | None = None) -> tuple[Query, ...]:
    """The query set for an engine (`vllm` or `tgi`) at a version (default: the newest llmop knows)."""
    if engine == "vllm":
        return _vllm(parse_version(version) if version else (99, 0, 0))
    if engine == "tgi":
        return _tgi()
    raise ValueError(f"unknown engine {engine!r}; expected vllm or tgi")


def query(engine: str, name: str, version: str | None = None) -> Query:
    for item in queries(engine, version):
        if item.name == name:
            return item
    raise KeyError(f"{engine} has no query {name!r}")


def query_templates(engine: str | None = None) -> list[tuple[str, str]]:
    """(`engine:name`, template) pairs for the dashboard and alert generators (newest versions)."""
    engines = (engine,) if engine else ("vllm", "tgi")
    return [(f"{item_engine}:{item.name}", item.template) for item_engine in engines for item in queries(item_engine)]


def buckets_for(engine: str) -> tuple[float, ...]:
    """Upper bounds (seconds) of the decode-latency histogram for an engine."""
    return VLLM_ITL_BUCKETS_S if engine == "vllm" else TGI_DURATION_BUCKETS_S
