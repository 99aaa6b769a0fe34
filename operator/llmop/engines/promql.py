"""PromQL templating shared by the engines' query sets: named templates, the per-deployment selector, windows."""

from __future__ import annotations

from dataclasses import dataclass
from string import Template

# The chart's PodMonitor copies the pod label `llmop.io/llmdeployment` to `llmdeployment`; the simulator
# emits the same labels. Every query aggregates to one series per (namespace, llmdeployment).
DEPLOYMENT_LABEL = "llmdeployment"
BY = f"namespace, {DEPLOYMENT_LABEL}"
RATE_WINDOW_S = 60.0


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


def quantile_of(bucket_expr: str) -> str:
    """histogram_quantile over bucket rates summed per deployment."""
    return f"histogram_quantile(${{quantile}}, sum by (le, {BY}) ({bucket_expr}))"


def mean_of(metric: str, extra: str = "") -> str:
    """Mean of a histogram over the window: rate of its _sum over rate of its _count, per deployment."""
    matcher = f"{{{extra}${{selector}}}}"
    return (
        f"sum by ({BY}) (rate({metric}_sum{matcher}[${{window}}])) / "
        f"sum by ({BY}) (rate({metric}_count{matcher}[${{window}}]))"
    )


def gauge_sum(metric: str) -> str:
    """A gauge summed over the deployment's pods."""
    return f"sum by ({BY}) ({metric}{{${{selector}}}})"


def growth(metric: str) -> str:
    """How fast a gauge grows, summed over the pods (PromQL deriv over the short rate window)."""
    return f"sum by ({BY}) (deriv({metric}{{${{selector}}}}[${{rate_window}}]))"


def counter_rate(metric: str) -> str:
    """A counter's per-second rate over the short rate window, summed over the pods."""
    return f"sum by ({BY}) (rate({metric}{{${{selector}}}}[${{rate_window}}]))"
