"""vLLM 0.33.0's own metrics code through a real Prometheus: the autoscaler, dashboard and rules read exact values."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from vllm_metrics_stack import (
    MODES,
    NAMESPACE,
    NO_ENGINE,
    OBSERVED_MS,
    OPERATOR_JOB,
    PERCENTILE,
    RECONCILE_BUCKETS,
    RECONCILE_PER_TICK,
    REPLICAS,
    REPO,
    TARGET_MS,
    Stack,
)

from llmop.autoscale.metrics import Observation, PrometheusMetrics
from llmop.engines.vllm_metrics import FINE_ITL_BUCKETS_S, FINE_TTFT_BUCKETS_S, ITL_BUCKETS_S
from llmop_dev.engine_check import vllm_venv_dir, vllm_venv_python
from llmop_dev.localcluster.prometheus import find_prometheus
from llmop_dev.observability.alerts import SLO_WINDOWS
from llmop_dev.observability.dashboard import concrete
from llmop_dev.observability.files import DASHBOARD_PATH, RULES_PATH
from llmop_dev.observability.queries import DEFAULT_PERCENTILE, le_label

pytestmark = pytest.mark.engine

ALL = (*MODES, NO_ENGINE)
WINDOW_S = 60.0  # the autoscaler's SLO window here; the dashboard's $__rate_interval is 1m as well
ITL_RATE = 'sum by (namespace, llmdeployment) (rate({__name__=~"vllm[:_]inter_token_latency_seconds_count"}[1m]))'


@dataclass(frozen=True)
class Expect:
    """What one expression must answer, per LLMDeployment: `values` exact (a deployment not listed must be absent);
    `present`: only that these answer, with a value > 0 (increase() over a wall-clock window); `per_itl`: the value
    divided by the same deployment's inter-token-latency count rate (a rate, exact as a ratio); `le`: the row with
    this `le` label (threshold rules answer one row per engine ladder)."""

    values: dict[str, float] | None = None
    present: frozenset[str] | None = None
    per_itl: dict[str, float] | None = None
    le: str | None = None


def quantile(q: float, edges: tuple[float, ...], samples: list[float]) -> float:
    """Prometheus' histogram_quantile over the cumulative bucket counts these samples make with these edges."""
    bounds = [*sorted(edges), math.inf]
    counts = [sum(1 for value in samples if value <= bound) for bound in bounds]
    rank = q * counts[-1]
    index = next(i for i, count in enumerate(counts) if count >= rank)
    if math.isinf(bounds[index]):
        return bounds[-2]
    lower, below = (0.0, 0) if index == 0 else (bounds[index - 1], counts[index - 1])
    return lower + (bounds[index] - lower) * (rank - below) / (counts[index] - below)


def edge_at_or_below(edges: tuple[float, ...], value: float) -> float:
    return max(edge for edge in edges if edge <= value + 1e-12)


@dataclass(frozen=True)
class Truth:
    """What one tick feeds vLLM's logger (the server's ground truth), and the values that follow from it."""

    doc: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.doc["per_tick"][key]

    @property
    def itl(self) -> list[float]:
        return list(self["inter_token_latencies_s"])

    @property
    def slow_share(self) -> float:
        edge = edge_at_or_below(FINE_ITL_BUCKETS_S, TARGET_MS / 1000)
        return sum(1 for value in self.itl if value > edge) / len(self.itl)

    def gauge(self, name: str) -> float:
        stats = self.doc["scheduler_stats"]
        if name == "waiting":  # vLLM's num_requests_waiting counts the deferred requests too
            return float(stats["num_waiting_reqs"] + stats["num_skipped_waiting_reqs"])
        return float(stats["num_running_reqs"] if name == "running" else stats["kv_cache_usage"])

    def mean(self, key: str) -> float:
        return float(sum(self[key]) / len(self[key]))


def expectations(truth: Truth) -> dict[str, Expect]:
    """Every shipped expression's answer, from the ground truth and the stand-in operator's values."""
    engines, itl, ttft = tuple(MODES), truth.itl, list(truth["time_to_first_tokens_s"])
    budget = 1 - PERCENTILE / 100
    burn = truth.slow_share / budget

    def ones(value: float, names: tuple[str, ...] = engines) -> dict[str, float]:
        return dict.fromkeys(names, value)

    def each(value: float, names: tuple[str, ...] = engines) -> Expect:
        return Expect(values=ones(value, names))

    ready = {**dict.fromkeys(engines, float(REPLICAS["ready"])), NO_ENGINE: float(REPLICAS["no_engine_ready"])}
    fine_edge = edge_at_or_below(FINE_ITL_BUCKETS_S, TARGET_MS / 1000)
    legacy_edge = edge_at_or_below(ITL_BUCKETS_S, TARGET_MS / 1000)
    reconcile = quantile(0.95, RECONCILE_BUCKETS, list(RECONCILE_PER_TICK))
    out = {
        "rule llmdeployment:slo_target:seconds": each(TARGET_MS / 1000, ALL),
        "rule llmdeployment:slo_error_budget:ratio": Expect({**ones(budget), NO_ENGINE: 1 - DEFAULT_PERCENTILE / 100}),
        "rule llmdeployment:slo_threshold:le": Expect(ones(TARGET_MS / 1000, ALL), le=le_label(fine_edge)),
        "rule llmdeployment:slo_threshold_legacy:le": Expect(ones(TARGET_MS / 1000, ALL), le=le_label(legacy_edge)),
        "rule LLMDeploymentDecodeLatencyBudgetBurnFast": each(burn),
        "rule LLMDeploymentDecodeLatencyBudgetBurnSlow": each(burn),
        "rule LLMOpOperatorDown": Expect(values={}),
        "rule LLMDeploymentMetricsMissing": Expect(values={NO_ENGINE: 0.0}),
        "rule LLMDeploymentReplicasBelowDesired": Expect(values={NO_ENGINE: float(REPLICAS["no_engine_ready"])}),
        "rule LLMDeploymentPlanRefused": Expect(present=frozenset({NO_ENGINE})),
        "panel 'SLO target' A": each(TARGET_MS, ALL),
        "panel 'Observed decode latency' A": each(OBSERVED_MS),
        "panel 'Ready / desired replicas' A": Expect(values=ready),
        "panel 'Ready / desired replicas' B": each(float(REPLICAS["desired"]), ALL),
        "panel 'Metrics available' A": Expect(values={**dict.fromkeys(engines, 1.0), NO_ENGINE: 0.0}),
        "panel 'Decode latency (TPOT) vs SLO' D": each(TARGET_MS, ALL),
        "panel 'Decode latency (TPOT) vs SLO' E": each(OBSERVED_MS),
        "panel 'Request rate' A": Expect(
            per_itl=dict.fromkeys(engines, len(truth["request_prompt_tokens"]) / len(itl))
        ),
        "panel 'Generated tokens' A": Expect(
            per_itl=dict.fromkeys(engines, truth["generation_tokens_total"] / len(itl))
        ),
        "panel 'Running and waiting requests' A": each(truth.gauge("running")),
        "panel 'Running and waiting requests' B": each(truth.gauge("waiting")),
        "panel 'KV cache usage' A": each(truth.gauge("kv_cache_usage")),
        "panel 'Desired vs ready replicas' A": each(float(REPLICAS["desired"]), ALL),
        "panel 'Desired vs ready replicas' B": Expect(values=ready),
        "panel 'Operator replicas up' A": Expect(values={}),  # one row, job llmop-operator, no deployment label
        "panel 'Reconcile duration p95' A": each(reconcile, ALL),
        "panel 'Plan refusals' A": Expect(present=frozenset({NO_ENGINE})),
        "annotation 'Scale decisions'": Expect(present=frozenset(engines)),
    }
    for window in SLO_WINDOWS:
        out[f"rule llmdeployment:decode_tokens_slow:ratio_rate{window}"] = each(truth.slow_share)
        out[f"rule llmdeployment:decode_slo:burn_rate{window}"] = each(burn)
    for ref in "ABC":  # the 5m, 1h and 6h records
        out[f"panel 'Decode-latency error-budget burn rate' {ref}"] = each(burn)
        out[f"panel 'Tokens slower than the SLO target' {ref}"] = each(truth.slow_share)
    for ref, q in zip("ABC", (0.5, 0.95, 0.99), strict=True):
        out[f"panel 'Decode latency (TPOT) vs SLO' {ref}"] = each(1000 * quantile(q, FINE_ITL_BUCKETS_S, itl))
        out[f"panel 'Time to first token' {ref}"] = each(1000 * quantile(q, FINE_TTFT_BUCKETS_S, ttft))
    return out


def shipped_expressions() -> list[tuple[str, str]]:
    """(where, PromQL) from the chart's files as shipped: the rule file and the dashboard JSON (Grafana's "All")."""
    rules = yaml.safe_load((REPO / RULES_PATH).read_text(encoding="utf-8"))
    found = [(f"rule {r.get('alert') or r['record']}", str(r["expr"])) for g in rules["groups"] for r in g["rules"]]
    model = json.loads((REPO / DASHBOARD_PATH).read_text(encoding="utf-8"))
    for panel in model["panels"]:
        found += [(f"panel {panel['title']!r} {t['refId']}", concrete(t["expr"])) for t in panel.get("targets", [])]
    found += [(f"annotation {a['name']!r}", concrete(a["expr"])) for a in model["annotations"]["list"] if "expr" in a]
    return found


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, engine_check_required: bool) -> Iterator[Stack]:
    python, prometheus = vllm_venv_python(), find_prometheus()
    missing = [f"vLLM venv at {vllm_venv_dir()} (scripts/vllm-venv.sh)"] if python is None else []
    missing += ["prometheus (apt-get install prometheus)"] if prometheus is None else []
    if missing:
        (pytest.fail if engine_check_required else pytest.skip)(f"missing: {', '.join(missing)}")
    assert python is not None
    local = Stack(tmp_path_factory.mktemp("vllm-real-metrics"), python, REPO / RULES_PATH)
    try:
        yield local.start()
    finally:
        local.stop()
        print(f"vLLM real-metrics tier: {local.timings}")  # server up / data ready, seconds after start
        if os.environ.get("LLMOP_SHOW_LOGS"):
            print(local.server_log()[-5000:])


@pytest.fixture(scope="module")
def answers(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    """Every shipped expression, and the ITL-count rate, evaluated at one instant just behind the newest scrape."""
    at = stack.settled_instant()
    found = {where: stack.query(expr, at) for where, expr in shipped_expressions()}  # a PromQL error raises
    found["itl-rate"] = stack.query(ITL_RATE, at)
    found["at"] = [{"value": [at, str(at)]}]
    return found


@pytest.fixture(scope="module")
def truth(stack: Stack) -> Truth:
    return Truth(stack.truth)


def _rows(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [
        row
        for row in rows
        if row["metric"].get("namespace") == NAMESPACE and row["metric"].get("llmdeployment") == name
    ]


def _value(row: dict[str, Any]) -> float:
    return float(row["value"][1])


def problems(answers: dict[str, list[dict[str, Any]]], expected: dict[str, Expect], name: str) -> list[str]:
    """What differs from the expectations for one LLMDeployment (close: 1e-9 relative)."""
    found: list[str] = []
    reference = {row["metric"].get("llmdeployment"): _value(row) for row in answers["itl-rate"]}
    for where in (w for w in answers if w not in ("itl-rate", "at")):
        expect = expected.get(where, Expect(present=frozenset(MODES)))  # an expression not listed: data at least
        rows = _rows(answers[where], name)
        if expect.le is not None:
            rows = [row for row in rows if row["metric"].get("le") == expect.le]
        if expect.values is not None:
            want: float | None = expect.values.get(name)
        elif expect.per_itl is not None:
            want = None if name not in expect.per_itl else expect.per_itl[name] * reference.get(name, math.nan)
        else:
            want = 1.0 if expect.present is not None and name in expect.present else None
        if want is None:
            if rows:
                found.append(f"{where}: expected no series, got {[_value(row) for row in rows]}")
        elif len(rows) != 1:
            found.append(f"{where}: expected one series, got {len(rows)}: {[row['metric'] for row in rows]}")
        elif expect.present is not None and expect.values is None and expect.per_itl is None:
            if not _value(rows[0]) > 0:
                found.append(f"{where}: expected a value > 0, got {_value(rows[0])}")
        elif not math.isclose(_value(rows[0]), want, rel_tol=1e-9, abs_tol=1e-12):
            found.append(f"{where}: expected {want!r}, got {_value(rows[0])!r}")
    return found


def test_ground_truth_is_vllms_own_and_designed_to_fire(stack: Stack, truth: Truth) -> None:
    """The server ran vLLM 0.33.0 with llmop's ladders; the first token of a request is not an ITL sample."""
    assert (stack.truth["vllm_version"], stack.truth["prometheus_client_version"]) == ("0.33.0", "0.26.0")
    assert stack.truth["custom_histogram_buckets"] == {
        "inter_token_latency": list(FINE_ITL_BUCKETS_S),
        "time_to_first_token": list(FINE_TTFT_BUCKETS_S),
    }
    assert len(truth.itl) == truth["generation_tokens_total"] - len(truth["request_prompt_tokens"])
    assert truth.slow_share / (1 - PERCENTILE / 100) > 14.4  # both burn alerts fire on this data
    assert sorted(truth["finished_reasons"]) == ["length", "stop"]


@pytest.mark.parametrize("mode", list(MODES))
def test_names_arrive_as_the_scrape_mode_makes_them(stack: Stack, mode: str) -> None:
    """OpenMetrics negotiation escapes `:` to `_` (prometheus/client_python#1177); relabelling and text 0.0.4 keep
    `vllm:` names."""
    names = {row["metric"]["__name__"] for row in stack.query(f'{{llmdeployment="{mode}", __name__=~"vllm.+"}}')}
    colon, escaped = {n for n in names if n.startswith("vllm:")}, {n for n in names if n.startswith("vllm_")}
    assert (bool(colon), bool(escaped)) == ((False, True) if mode == "negotiated" else (True, False)), sorted(names)[:5]
    assert ("vllm_num_requests_running" if mode == "negotiated" else "vllm:num_requests_running") in names


@pytest.mark.parametrize("mode", list(MODES))
def test_autoscaler_reads_exact_values(stack: Stack, truth: Truth, answers: dict[str, Any], mode: str) -> None:
    """PrometheusMetrics.observe through prometheus-api-client, and once more pinned to the instant of `answers`
    (the rates then compare exactly with the same instant's ITL-count rate)."""
    itl, ttft = truth.itl, list(truth["time_to_first_tokens_s"])
    live = PrometheusMetrics(stack.url).observe(NAMESPACE, mode, "vllm", "0.33.0", 95.0, WINDOW_S, 90.0)
    at = float(answers["at"][0]["value"][0])
    pinned = PrometheusMetrics(stack.url, runner=lambda expr: stack.query(expr, at), clock=lambda: at).observe(
        NAMESPACE, mode, "vllm", "0.33.0", 95.0, WINDOW_S, 90.0
    )
    edge = edge_at_or_below(FINE_ITL_BUCKETS_S, TARGET_MS / 1000)
    for observation in (live, pinned):
        assert observation.error is None, observation.error
        assert observation.latency_ms == pytest.approx(1000 * quantile(0.95, FINE_ITL_BUCKETS_S, itl), rel=1e-9)
        assert observation.ttft_ms == pytest.approx(1000 * quantile(0.90, FINE_TTFT_BUCKETS_S, ttft), rel=1e-9)
        assert not observation.below_resolution
        assert (observation.running, observation.waiting) == (truth.gauge("running"), truth.gauge("waiting"))
        assert observation.kv_usage == truth.gauge("kv_cache_usage")
        assert observation.mean_prompt_tokens == pytest.approx(truth.mean("request_prompt_tokens"), rel=1e-9)
        assert observation.mean_output_tokens == pytest.approx(truth.mean("request_generation_tokens"), rel=1e-9)
        assert observation.waiting_growth_rps == pytest.approx(0.0, abs=1e-12)
        assert sorted(bound for bound, _ in observation.buckets) == [*FINE_ITL_BUCKETS_S, math.inf]
        assert observation.share_above(edge) == pytest.approx(truth.slow_share, rel=1e-9)
        assert observation.samples > 0 and (observation.request_rate or 0) > 0
    _check_rates(pinned, truth, answers, mode)


def _check_rates(pinned: Observation, truth: Truth, answers: dict[str, Any], mode: str) -> None:
    itl_rate = next(_value(row) for row in _rows(answers["itl-rate"], mode))
    assert pinned.samples / WINDOW_S == pytest.approx(itl_rate, rel=1e-9)
    finished = len(truth["request_prompt_tokens"])
    assert pinned.request_rate == pytest.approx(itl_rate * finished / len(truth.itl), rel=1e-9)


@pytest.mark.parametrize("mode", list(MODES))
def test_every_panel_and_rule_is_exact(truth: Truth, answers: dict[str, list[dict[str, Any]]], mode: str) -> None:
    """Each dashboard query and rule of the chart's files answers for this LLMDeployment with the value the fed
    samples determine (or, for the operator-side alerts, stays quiet)."""
    expected = expectations(truth)
    unknown = sorted(set(expected) - set(answers))
    assert not unknown, f"expectations for expressions the chart's files no longer have: {unknown}"
    found = problems(answers, expected, mode)
    assert not found, f"{mode}: {len(found)} of {len(answers) - 2} expressions differ:\n" + "\n".join(found)


def test_operator_side_expressions(truth: Truth, answers: dict[str, list[dict[str, Any]]]) -> None:
    """A deployment with ready replicas but no engine series: metrics missing, below desired, refused; the rules
    fall back to the 95th percentile without llmop_slo_percentile; the operator target is up."""
    found = problems(answers, expectations(truth), NO_ENGINE)
    assert not found, "\n".join(found)
    assert answers["rule LLMOpOperatorDown"] == []
    up = answers["panel 'Operator replicas up' A"]
    assert [(row["metric"]["job"], _value(row)) for row in up] == [(OPERATOR_JOB, 1.0)]
