"""Observability generated from code: the Grafana dashboard and the Prometheus rules shipped in the Helm chart."""

from __future__ import annotations

from llmop_dev.observability import alerts, dashboard
from llmop_dev.observability.alerts import prometheus_rules
from llmop_dev.observability.files import DASHBOARD_PATH, RULES_PATH, render_dashboard, render_rules, write_files


def all_expressions() -> list[tuple[str, str]]:
    """(where, PromQL) for every rule and every dashboard query, with Grafana's variables filled in.

    For a test against a live Prometheus (with files/prometheus-rules.yaml loaded) that each one returns data.
    """
    rules = [(f"rule {name}", expr) for name, expr in alerts.expressions()]
    return rules + dashboard.expressions(dashboard.GRAFANA_DEFAULTS)


__all__ = [
    "DASHBOARD_PATH",
    "RULES_PATH",
    "all_expressions",
    "prometheus_rules",
    "render_dashboard",
    "render_rules",
    "write_files",
]
