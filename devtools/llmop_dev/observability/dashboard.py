"""The on-call Grafana dashboard for LLMDeployments, generated as Grafana JSON (schemaVersion 39)."""

from __future__ import annotations

from typing import Any

from llmop_dev.observability.alerts import BURN_ALERTS, burn_rate_record, slow_ratio_record
from llmop_dev.observability.grafana import DATASOURCE, Panel, Target, dashed_red, layout, ref, template_variable
from llmop_dev.observability.queries import (
    DESIRED_REPLICAS,
    METRICS_AVAILABLE,
    OBSERVED_DECODE_MS,
    OPERATOR_JOB,
    PLAN_REFUSALS,
    READY_REPLICAS,
    RECONCILE_DURATION,
    SCALE_DECISIONS,
    SLO_TARGET_MS,
    TGI,
    VLLM,
    autoscaler_query,
    by_deployment,
    new_or_increased,
    per_engine_sum,
    selector,
)

UID = "llmop-overview"
TITLE = "llmop / LLM deployments"
MATCHERS = 'namespace=~"$namespace", llmdeployment=~"$llmdeployment"'
RATE = "$__rate_interval"
WHO = "{{namespace}}/{{llmdeployment}}"
QUANTILES = ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))


def _m(metric: str) -> str:
    return selector(metric, MATCHERS)


def stat_panels() -> list[Panel]:
    mapping = [
        {"type": "value", "options": {"0": {"text": "missing", "color": "red"}, "1": {"text": "ok", "color": "green"}}}
    ]
    return [
        Panel(
            "SLO target",
            "Decode-latency (TPOT) target from spec.slo.decodeLatency.targetMs.",
            [Target(by_deployment("max", _m(SLO_TARGET_MS)), WHO)],
            unit="ms",
            kind="stat",
            width=6,
            height=4,
        ),
        Panel(
            "Observed decode latency",
            "The decode latency at the SLO percentile as the operator's autoscaler last read it.",
            [Target(by_deployment("max", _m(OBSERVED_DECODE_MS)), WHO)],
            unit="ms",
            kind="stat",
            width=6,
            height=4,
        ),
        Panel(
            "Ready / desired replicas",
            "Ready engine replicas and the replica count the autoscaler wants.",
            [
                Target(by_deployment("max", _m(READY_REPLICAS)), f"{WHO} ready"),
                Target(by_deployment("max", _m(DESIRED_REPLICAS)), f"{WHO} desired"),
            ],
            kind="stat",
            width=6,
            height=4,
        ),
        Panel(
            "Metrics available",
            "1 when the autoscaler can read the engine's latency from Prometheus; 0 holds the replica count.",
            [Target(by_deployment("min", _m(METRICS_AVAILABLE)), WHO)],
            kind="stat",
            width=6,
            height=4,
            extra_defaults={"mappings": mapping},
        ),
    ]


def latency_panels() -> list[Panel]:
    decode = [
        Target(f"1000 * ({autoscaler_query('decode_latency_quantile', MATCHERS, RATE, q)})", f"{WHO} {name}")
        for q, name in QUANTILES
    ]
    slo_ref = ref(len(decode))
    decode.append(Target(by_deployment("max", _m(SLO_TARGET_MS)), f"{WHO} SLO target"))
    decode.append(Target(by_deployment("max", _m(OBSERVED_DECODE_MS)), f"{WHO} operator's view"))
    ttft = [
        Target(f"1000 * ({autoscaler_query('ttft_quantile', MATCHERS, RATE, q)})", f"{WHO} {name}")
        for q, name in QUANTILES
    ]
    return [
        Panel(
            "Decode latency (TPOT) vs SLO",
            f"vLLM: {VLLM.decode_meaning}. TGI: {TGI.decode_meaning}. Quantiles interpolate inside histogram "
            "buckets (vLLM's are 10, 25, 50, 75, 100 ms ...); the dashed red line is the SLO target, the "
            "operator's view is what the autoscaler last read.",
            decode,
            unit="ms",
            overrides=[dashed_red(slo_ref)],
        ),
        Panel(
            "Time to first token",
            "vLLM: time to first token. TGI exports no TTFT histogram: queue-time quantile plus the mean "
            "prefill step (the autoscaler's approximation).",
            ttft,
            unit="ms",
        ),
    ]


def load_panels() -> list[Panel]:
    return [
        Panel(
            "Request rate",
            "Finished requests per second.",
            [Target(autoscaler_query("request_rate", MATCHERS, RATE), WHO)],
            unit="reqps",
            width=8,
        ),
        Panel(
            "Generated tokens",
            "Output tokens per second.",
            [Target(per_engine_sum("generated_tokens_counter", MATCHERS, RATE), WHO)],
            unit="short",
            width=8,
        ),
        Panel(
            "Running and waiting requests",
            "Requests in the running batch and in the queue, summed over replicas (TGI: batch size, queue size).",
            [
                Target(autoscaler_query("running", MATCHERS, RATE), f"{WHO} running"),
                Target(autoscaler_query("waiting", MATCHERS, RATE), f"{WHO} waiting"),
            ],
            width=8,
        ),
        Panel(
            "KV cache usage",
            "Fullest replica's KV-cache usage (vLLM only; TGI exports no KV-cache gauge). Near 100 % requests "
            "queue or get preempted.",
            [Target(autoscaler_query("kv_usage", MATCHERS, RATE), WHO)],
            unit="percentunit",
            extra_defaults={"min": 0, "max": 1},
        ),
        Panel(
            "Desired vs ready replicas",
            "Scale decisions show as annotations (purple).",
            [
                Target(by_deployment("max", _m(DESIRED_REPLICAS)), f"{WHO} desired"),
                Target(by_deployment("max", _m(READY_REPLICAS)), f"{WHO} ready"),
            ],
            extra_defaults={"decimals": 0},
        ),
    ]


def slo_panels() -> list[Panel]:
    windows = ("5m", "1h", "6h")
    steps = [{"color": "green", "value": None}]
    steps += [
        {"color": "red" if alert.severity == "critical" else "orange", "value": alert.factor}
        for alert in sorted(BURN_ALERTS, key=lambda alert: alert.factor)
    ]
    return [
        Panel(
            "Decode-latency error-budget burn rate",
            "Share of tokens slower than the SLO target's bucket edge, divided by the error budget "
            "(1 - percentile/100). 1 spends a 30-day budget in 30 days; the lines mark the slow (6x) and fast "
            "(14.4x) burn alerts.",
            [Target(_m(burn_rate_record(window)), f"{WHO} {window}") for window in windows],
            extra_defaults={
                "thresholds": {"mode": "absolute", "steps": steps},
                "custom": {"thresholdsStyle": {"mode": "line"}},
            },
        ),
        Panel(
            "Tokens slower than the SLO target",
            "The SLI: share of decode observations above the bucket edge at or below the target.",
            [Target(_m(slow_ratio_record(window)), f"{WHO} {window}") for window in windows],
            unit="percentunit",
        ),
    ]


def operator_panels() -> list[Panel]:
    reconcile = f"rate({selector(RECONCILE_DURATION + '_bucket', MATCHERS)}[{RATE}])"
    return [
        Panel(
            "Operator replicas up",
            "Scrape health of the operator pods; one of them holds the leadership and acts.",
            [Target(f'up{{job="{OPERATOR_JOB}"}}', "{{pod}}")],
            width=8,
        ),
        Panel(
            "Reconcile duration p95",
            "Time of one reconcile pass.",
            [Target(f"histogram_quantile(0.95, {by_deployment('sum', reconcile, ('le',))})", WHO)],
            unit="s",
            width=8,
        ),
        Panel(
            "Plan refusals",
            "Reconciles that refused the spec in the last 15 minutes (see LLMDeploymentPlanRefused).",
            [Target(by_deployment("sum", f"increase({_m(PLAN_REFUSALS)}[15m])"), WHO)],
            width=8,
        ),
    ]


def scale_annotation() -> dict[str, Any]:
    expr = new_or_increased(_m(SCALE_DECISIONS), "1m", ("direction",))
    return {
        "name": "Scale decisions",
        "datasource": DATASOURCE,
        "enable": True,
        "iconColor": "purple",
        "expr": expr,
        "step": "1m",
        "titleFormat": "scale {{direction}}",
        "textFormat": WHO,
        "tagKeys": "llmdeployment,direction",
        "useValueForTime": False,
    }


def dashboard() -> dict[str, Any]:
    """The dashboard JSON model; import it in Grafana or ship it in a ConfigMap for the Grafana sidecar."""
    rows = [
        ("Overview", stat_panels()),
        ("Latency", latency_panels()),
        ("Load and replicas", load_panels()),
        ("Decode-latency SLO", slo_panels()),
        ("Operator", operator_panels()),
    ]
    return {
        "uid": UID,
        "title": TITLE,
        "description": "LLMDeployments managed by llmop: decode latency against the SLO, load, replicas, burn rate.",
        "tags": ["llmop", "llm", "slo"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                scale_annotation(),
            ]
        },
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "options": [],
                    "refresh": 1,
                    "regex": "",
                },
                template_variable("namespace", "Namespace", f"label_values({DESIRED_REPLICAS}, namespace)"),
                template_variable(
                    "llmdeployment",
                    "LLMDeployment",
                    f'label_values({DESIRED_REPLICAS}{{namespace=~"$namespace"}}, llmdeployment)',
                ),
            ]
        },
        "panels": layout(rows),
    }


# Grafana's variables as Grafana sends them to Prometheus with "All" selected (and a 1m scrape-based rate interval).
GRAFANA_DEFAULTS = {"$__rate_interval": "1m", "$namespace": ".*", "$llmdeployment": ".*"}


def concrete(expr: str, variables: dict[str, str] | None = None) -> str:
    """The query with Grafana's template variables replaced, ready for Prometheus' /api/v1/query."""
    for variable, value in (variables or GRAFANA_DEFAULTS).items():
        expr = expr.replace(variable, value)
    return expr


def expressions(variables: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(where, PromQL) for every query in the dashboard (panel targets, annotations; not label_values).

    With `variables` (e.g. GRAFANA_DEFAULTS), Grafana's template variables are filled in.
    """
    model = dashboard()
    found = [(f"panel {p['title']!r} {t['refId']}", t["expr"]) for p in model["panels"] for t in p.get("targets", [])]
    found += [(f"annotation {a['name']!r}", a["expr"]) for a in model["annotations"]["list"] if "expr" in a]
    if variables is None:
        return found
    return [(where, concrete(expr, variables)) for where, expr in found]
