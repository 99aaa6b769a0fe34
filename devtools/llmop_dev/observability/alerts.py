"""Prometheus rules for llmop: decode-latency SLO recording rules, multi-window burn-rate alerts, operator alerts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmop_dev.observability.queries import (
    BY,
    DEFAULT_PERCENTILE,
    DESIRED_REPLICAS,
    ENGINES,
    METRICS_AVAILABLE,
    ON,
    OPERATOR_JOB,
    PLAN_REFUSALS,
    POD,
    READY_REPLICAS,
    SLO_PERCENTILE,
    SLO_TARGET_MS,
    EngineMetrics,
    by_deployment,
    either,
    engine_presence,
    indent,
    le_label,
    new_or_increased,
)
from llmop_dev.observability.runbook import with_runbooks

# The decode-latency SLI, as the recording rules below compute it:
#
#   SLO      "p<percentile> of decode latency stays under <targetMs>", i.e. at most (1 - percentile/100) of
#            generated tokens may be slower than the target. That share is the error budget.
#   SLI      the share of tokens slower than the target over a window:
#              1 - rate(bucket{le=E}) / rate(count)
#            where E is the histogram bucket edge AT OR BELOW the target (the largest edge <= target). Histograms
#            only count at their edges, so a target between two edges is measured at the edge below it: tokens
#            between E and the target count as slow and no slow token counts as good (the SLI errs high, the
#            alerts page early rather than late). The SLI is exact when the target sits on an edge; a target
#            above the largest edge is measured there, and only a target below the first edge is measured above
#            itself, at the first edge. The edges are the autoscaler's (llmop.engines):
#            vLLM: vllm:inter_token_latency_seconds, one observation per generated token. Pods of vLLM >= 0.32
#            carry llmop's fine ladder (every 1 ms to 50 ms, 2.5 ms to 150 ms, ...); older pods only vLLM's
#            default edges (10, 25, 50, 75, 100, 150, 200 ms ...), all of which are on the fine ladder. Each pod
#            is measured at the fine edge at or below the target when it exports that edge, else at the default
#            edge at or below the target (THRESHOLD_LE_LEGACY), so a rollout between versions counts every
#            token once.
#            TGI: tgi_batch_inference_duration (0.1 ms x 1.5^k edges), decode and prefill steps, one observation
#            per batch step: every step is a gap each running sequence sees, so its SLI is the share of steps
#            slower than the target (per step, not per token).
#   Burn     SLI / error budget; 1 spends the budget exactly over the SLO period (30 days).
#   Alerts   fast: burn > 14.4 over 1h AND over 5m (2 % of a 30-day budget in 1 h), page;
#            slow: burn > 6 over 6h AND over 30m (5 % in 6 h), ticket. The short window makes an alert stop
#            soon after the burn stops (Google SRE workbook, "Alerting on SLOs", multiwindow multi-burn-rate).
#
# The target comes from the operator's llmop_slo_target_ms; the percentile from llmop_slo_percentile, falling
# back to 95 (the CRD default) for deployments where the operator does not export it.

TARGET_SECONDS = "llmdeployment:slo_target:seconds"
ERROR_BUDGET = "llmdeployment:slo_error_budget:ratio"
THRESHOLD_LE = "llmdeployment:slo_threshold:le"
THRESHOLD_LE_LEGACY = "llmdeployment:slo_threshold_legacy:le"
SLO_WINDOWS = ("5m", "30m", "1h", "6h")


def slow_ratio_record(window: str) -> str:
    return f"llmdeployment:decode_tokens_slow:ratio_rate{window}"


def burn_rate_record(window: str) -> str:
    return f"llmdeployment:decode_slo:burn_rate{window}"


@dataclass(frozen=True)
class BurnAlert:
    """One multi-window burn-rate alert: fires when both windows burn faster than `factor`."""

    name: str
    long_window: str
    short_window: str
    factor: float
    for_: str
    severity: str
    speed: str
    budget_share: str


BURN_ALERTS: tuple[BurnAlert, ...] = (
    BurnAlert("LLMDeploymentDecodeLatencyBudgetBurnFast", "1h", "5m", 14.4, "2m", "critical", "fast", "2 % per hour"),
    BurnAlert(
        "LLMDeploymentDecodeLatencyBudgetBurnSlow", "6h", "30m", 6.0, "15m", "warning", "slow", "5 % per 6 hours"
    ),
)

WHO = "{{ $labels.namespace }}/{{ $labels.llmdeployment }}"


def edge_at_or_below(edges: tuple[float, ...]) -> list[str]:
    """One clause per edge: the target series, labelled le=edge, where edge is the largest edge <= the target
    (the first edge also takes targets below it; the last, targets above it)."""
    clauses: list[str] = []
    for index, edge in enumerate(edges):
        condition = TARGET_SECONDS
        if index > 0:
            condition += f" >= {edge!r}"
        if index + 1 < len(edges):
            condition += f" < {edges[index + 1]!r}"
        clauses.append(f'label_replace({condition}, "le", "{le_label(edge)}", "", "")')
    return clauses


def threshold_selector(legacy: bool = False) -> str:
    """Per LLMDeployment and engine, one series whose `le` label is the bucket edge at or below the target;
    with `legacy`, the edge on the ladder of the engine's older versions (engines that have one)."""
    clauses: list[str] = []
    ladders = dict.fromkeys(engine.legacy_decode_edges if legacy else engine.decode_edges for engine in ENGINES)
    for edges in ladders:  # each ladder once (VLLM_ESCAPED shares VLLM's)
        clauses += edge_at_or_below(edges)
    return "\n  or ".join(clauses)


def good_rate(engine: EngineMetrics, window: str) -> str:
    """Per LLMDeployment, the rate of the engine's decode observations at or under the threshold edge (by `le`;
    by `pod` and `le` for an engine with a legacy ladder: each pod at the fine edge if it exports it, otherwise
    at the legacy edge, so no pod counts twice)."""
    bucket = f"rate({engine.decode('bucket')}[{window}])"
    if not engine.legacy_decode_edges:
        return f"{by_deployment('sum', bucket, ('le',))}\nand on ({BY}, le)\n{THRESHOLD_LE}"
    rates = by_deployment("sum", bucket, (POD, "le"))
    return (
        f"(\n  {rates}\n  and on ({BY}, le)\n  {THRESHOLD_LE}\n)\n"
        f"or on ({BY}, {POD})\n"
        f"(\n  {rates}\n  and on ({BY}, le)\n  {THRESHOLD_LE_LEGACY}\n)"
    )


def slow_ratio(window: str) -> str:
    """Share of decode observations slower than the target's bucket edge over `window` (the SLI)."""
    good = either([good_rate(engine, window) for engine in ENGINES])
    total = either([by_deployment("sum", f"rate({engine.decode('count')}[{window}])") for engine in ENGINES])
    return f"1 - (\n  sum by ({BY}) (\n{indent(good, '    ')}\n  )\n  /\n  (\n{indent(total, '    ')}\n  )\n)"


def recording_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {"record": TARGET_SECONDS, "expr": f"{by_deployment('max', SLO_TARGET_MS)} / 1000"},
        {
            "record": ERROR_BUDGET,
            "expr": (
                f"1 - (\n  {by_deployment('max', SLO_PERCENTILE)}\n"
                f"  or {ON} (0 * {TARGET_SECONDS} + {DEFAULT_PERCENTILE})\n) / 100"
            ),
        },
        {"record": THRESHOLD_LE, "expr": threshold_selector()},
        {"record": THRESHOLD_LE_LEGACY, "expr": threshold_selector(legacy=True)},
    ]
    for window in SLO_WINDOWS:
        rules.append({"record": slow_ratio_record(window), "expr": slow_ratio(window)})
        rules.append(
            {"record": burn_rate_record(window), "expr": f"{slow_ratio_record(window)}\n/ {ON}\n{ERROR_BUDGET}"}
        )
    return rules


def burn_alert(alert: BurnAlert) -> dict[str, Any]:
    factor = f"{alert.factor:g}"
    return {
        "alert": alert.name,
        "expr": (
            f"{burn_rate_record(alert.long_window)} > {factor}\n"
            f"and {ON}\n{burn_rate_record(alert.short_window)} > {factor}"
        ),
        "for": alert.for_,
        "labels": {"severity": alert.severity, "slo": "decode-latency"},
        "annotations": {
            "summary": f"{WHO} burns its decode-latency error budget {alert.speed}",
            "description": (
                f"Tokens slower than the decode-latency SLO target arrive at {{{{ $value | humanize }}}}x the "
                f"error-budget rate over {alert.long_window} (and over {alert.short_window}); at {factor}x a 30-day "
                f"budget loses {alert.budget_share}. Scale up, or check the SLO against "
                "`kubectl get llmdeployment` status and the llmop dashboard."
            ),
        },
    }


def operator_alerts() -> list[dict[str, Any]]:
    refused = new_or_increased(PLAN_REFUSALS, "15m")
    missing = (
        f"({by_deployment('max', METRICS_AVAILABLE)} == 0)\n"
        f"or\n(\n  {by_deployment('max', READY_REPLICAS)} > 0\n  unless {ON}\n  (\n"
        f"{indent(engine_presence(), '    ')}\n  )\n)"
    )
    return [
        {
            "alert": "LLMOpOperatorDown",
            "expr": f'absent(up{{job="{OPERATOR_JOB}"}} == 1)',
            "for": "5m",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "No llmop operator replica is up",
                "description": (
                    f'Prometheus has scraped no healthy target with job="{OPERATOR_JOB}" for 5 minutes: '
                    "LLMDeployments are neither reconciled nor autoscaled. Check the operator pods and their "
                    "ServiceMonitor."
                ),
            },
        },
        {
            "alert": "LLMDeploymentMetricsMissing",
            "expr": missing,
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": f"{WHO} has no decode-latency metrics",
                "description": (
                    "The operator reports no usable engine metrics (llmop_metrics_available == 0), or ready "
                    "replicas exist but Prometheus has no engine series for them. The autoscaler holds the "
                    "replica count until metrics return. Check the PodMonitor and LLMOP_PROMETHEUS_URL."
                ),
            },
        },
        {
            "alert": "LLMDeploymentReplicasBelowDesired",
            "expr": f"{by_deployment('max', READY_REPLICAS)}\n< {ON}\n{by_deployment('max', DESIRED_REPLICAS)}",
            "for": "15m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": f"{WHO} has had fewer ready replicas than desired for 15 minutes",
                "description": (
                    "{{ $value }} ready, fewer than the operator wants. Look for pending pods "
                    "(no free GPUs of the planned type), image pulls, or engines failing their startup probe."
                ),
            },
        },
        {
            "alert": "LLMDeploymentPlanRefused",
            "expr": refused,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": f"llmop refused the spec of {WHO}",
                "description": (
                    "The planner refused this LLMDeployment in the last 15 minutes (engine, quantization, GPU, "
                    "memory or SLO do not fit together). `kubectl describe llmdeployment` shows the reasons."
                ),
            },
        },
    ]


def prometheus_rules() -> dict[str, Any]:
    """The rule groups, as a Prometheus rule file (also the `spec` of the chart's PrometheusRule); every alert
    links its section of docs/runbook.md."""
    return with_runbooks(
        {
            "groups": [
                {"name": "llmop.slo.rules", "rules": recording_rules()},
                {"name": "llmop.slo.alerts", "rules": [burn_alert(alert) for alert in BURN_ALERTS]},
                {"name": "llmop.operator.alerts", "rules": operator_alerts()},
            ]
        }
    )


def expressions() -> list[tuple[str, str]]:
    """(rule name, PromQL) for every rule, for tests that parse or evaluate them."""
    found: list[tuple[str, str]] = []
    for group in prometheus_rules()["groups"]:
        for rule in group["rules"]:
            found.append((rule.get("alert") or rule["record"], rule["expr"]))
    return found
