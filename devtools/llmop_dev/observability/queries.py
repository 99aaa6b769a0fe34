"""PromQL building blocks shared by the dashboard and the alert rules: engine metric names, labels, bucket edges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from string import Template

from llmop import engines as promql
from llmop.engines import tgi, vllm_metrics

# Every engine series carries these after the PodMonitor's relabelling (pod label llmop.io/llmdeployment ->
# `llmdeployment`, plus the target's `namespace` and `pod`); the operator's own llmop_* series carry them natively.
NAMESPACE = "namespace"
DEPLOYMENT = "llmdeployment"
POD = "pod"
BY = f"{NAMESPACE}, {DEPLOYMENT}"
ON = f"on ({BY})"

# The `job` label the chart's ServiceMonitor gives the operator's own /metrics (LLMOpOperatorDown keys on it).
OPERATOR_JOB = "llmop-operator"

# vLLM ITL/TPOT buckets: the autoscaler's (llmop.engines, newest version), i.e. llmop's fine ladder that pods of
# vLLM >= 0.32 get through --custom-histogram-buckets; and the default ladder older versions keep (identical
# 0.11 -> 0.33 where not replaced, vllm/v1/metrics/buckets.py; engines.md 2.1). Every default edge is a fine edge.
VLLM_DECODE_EDGES: tuple[float, ...] = promql.buckets_for("vllm")
VLLM_LEGACY_DECODE_EDGES: tuple[float, ...] = vllm_metrics.ITL_BUCKETS_S


def tgi_duration_edges() -> tuple[float, ...]:
    """TGI's `*duration` buckets (router/src/server.rs: value *= 1.5, 35 times, from 0.0001), from llmop.engines."""
    return tgi.DURATION_BUCKETS_S


def le_label(edge: float) -> str:
    """The `le` label value a scrape carries for a bucket edge.

    Python's prometheus_client (vLLM) writes floatToGoString: shortest round-trip digits, integers as "1.0";
    TGI's metrics-exporter-prometheus writes Rust's f64 Display, the same shortest digits (TGI has no integral
    edge); Prometheus 3 normalises classic-histogram `le` values to this same form on ingestion.
    """
    if edge == int(edge) and abs(edge) < 1e15:
        return f"{int(edge)}.0"
    return repr(edge)


@dataclass(frozen=True)
class EngineMetrics:
    """The engine series the SLO rules and the alerts read (the autoscaler's queries live in llmop.engines)."""

    engine: str
    decode_histogram: str  # the decode-latency histogram (base name, seconds), as llmop.engines reads it
    decode_matchers: str  # extra label matchers on it, "" for none
    decode_edges: tuple[float, ...]
    decode_meaning: str
    generated_tokens_counter: str
    running_gauge: str  # exported by every running engine pod: its presence means Prometheus scrapes the pod
    # The edges older versions of the engine export instead of `decode_edges`, () when every version has those:
    # the SLI falls back to them per pod (a pod without the threshold's edge is measured at its own ladder's).
    legacy_decode_edges: tuple[float, ...] = ()

    def decode(self, suffix: str, matchers: str = "") -> str:
        """`<decode histogram>_<suffix>{matchers}` with the engine's own matchers merged in."""
        return selector(f"{self.decode_histogram}_{suffix}", join_matchers(self.decode_matchers, matchers))


VLLM = EngineMetrics(
    engine="vllm",
    decode_histogram="vllm:inter_token_latency_seconds",
    decode_matchers="",
    decode_edges=VLLM_DECODE_EDGES,
    decode_meaning="inter-token latency: one observation per generated token (vLLM >= 0.11)",
    generated_tokens_counter="vllm:generation_tokens_total",
    running_gauge="vllm:num_requests_running",
    legacy_decode_edges=VLLM_LEGACY_DECODE_EDGES,
)

TGI = EngineMetrics(
    engine="tgi",
    decode_histogram="tgi_batch_inference_duration",
    decode_matchers="",
    decode_edges=tgi_duration_edges(),
    decode_meaning=(
        "batch steps, decode and prefill: each gives every running sequence its next token or stalls it (one "
        "observation per step, not per sequence)"
    ),
    generated_tokens_counter="tgi_request_generated_tokens_sum",
    running_gauge="tgi_batch_current_size",
)

# The same vLLM series as a Prometheus 2.x stores them when it negotiated OpenMetrics and vLLM's exporter escaped
# `:` to `_` (llmop.engines.vllm_metrics.ESCAPED_NAME_PREFIX); listed after VLLM, so `either` prefers the colon names.
VLLM_ESCAPED = replace(
    VLLM,
    decode_histogram=vllm_metrics.escaped_names(VLLM.decode_histogram),
    generated_tokens_counter=vllm_metrics.escaped_names(VLLM.generated_tokens_counter),
    running_gauge=vllm_metrics.escaped_names(VLLM.running_gauge),
)

ENGINES: tuple[EngineMetrics, ...] = (VLLM, VLLM_ESCAPED, TGI)

# The operator's own series (llmop.controller.telemetry), all labelled namespace and llmdeployment.
DESIRED_REPLICAS = "llmop_desired_replicas"
READY_REPLICAS = "llmop_ready_replicas"
OBSERVED_DECODE_MS = "llmop_observed_decode_latency_ms"
SLO_TARGET_MS = "llmop_slo_target_ms"
SLO_PERCENTILE = "llmop_slo_percentile"  # requested from the operator; rules fall back to 95 without it
SCALE_DECISIONS = "llmop_scale_decisions_total"
RECONCILE_DURATION = "llmop_reconcile_duration_seconds"
PLAN_REFUSALS = "llmop_plan_refusals_total"
METRICS_AVAILABLE = "llmop_metrics_available"
DEFAULT_PERCENTILE = 95


def join_matchers(*parts: str) -> str:
    return ", ".join(part for part in parts if part)


def selector(metric: str, matchers: str = "") -> str:
    return f"{metric}{{{matchers}}}" if matchers else metric


def by_deployment(aggregation: str, inner: str, extra: Sequence[str] = ()) -> str:
    """`<aggregation> by (namespace, llmdeployment[, extra...]) (<inner>)`."""
    labels = ", ".join((NAMESPACE, DEPLOYMENT, *extra))
    return f"{aggregation} by ({labels}) ({inner})"


def indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line if line else line for line in text.split("\n"))


def either(expressions: Sequence[str]) -> str:
    """`a or b or ...` with each side parenthesised; one engine's series fill in where the other's are absent."""
    if len(expressions) == 1:
        return expressions[0]
    return "\nor\n".join(f"(\n{indent(expression)}\n)" for expression in expressions)


def autoscaler_query(name: str, matchers: str, window: str, quantile: float = 0.95) -> str:
    """An llmop.engines query (newest engine versions) for every engine that has it, or-ed across engines.

    `matchers` replaces the per-LLMDeployment selector (e.g. Grafana's `namespace=~"$namespace", ...`) and
    `window` both the SLO window and the rate window (e.g. `$__rate_interval`).
    """
    parts: list[str] = []
    for engine in dict.fromkeys(engine.engine for engine in ENGINES):  # the queries read both vLLM name forms
        try:
            template = promql.query(engine, name).template
        except KeyError:
            continue
        values = {"selector": matchers, "window": window, "rate_window": window, "quantile": f"{quantile:g}"}
        parts.append(Template(template).substitute(values))
    if not parts:
        raise KeyError(f"llmop.engines has no query {name!r}")
    return either(parts)


def per_engine_sum(attribute: str, matchers: str = "", window: str | None = None) -> str:
    """`sum by (namespace, llmdeployment)` of one EngineMetrics series (rate()d when `window`), or-ed across engines."""
    parts: list[str] = []
    for engine in ENGINES:
        inner = selector(getattr(engine, attribute), matchers)
        if window:
            inner = f"rate({inner}[{window}])"
        parts.append(by_deployment("sum", inner))
    return either(parts)


def engine_presence() -> str:
    """One series per LLMDeployment whose engine pods Prometheus scrapes (any engine)."""
    return either([by_deployment("count", engine.running_gauge) for engine in ENGINES])


def new_or_increased(metric: str, window: str, extra: Sequence[str] = ()) -> str:
    """Per LLMDeployment: counters that grew within `window`, or appeared within it (rate() misses a first value)."""
    now = by_deployment("sum", metric, extra)
    before = by_deployment("sum", f"{metric} offset {window}", extra)
    labels = ", ".join((NAMESPACE, DEPLOYMENT, *extra))
    return (
        f"{by_deployment('sum', f'increase({metric}[{window}])', extra)} > 0\nor\n({now} unless on ({labels}) {before})"
    )
