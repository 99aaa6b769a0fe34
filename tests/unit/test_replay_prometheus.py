"""The replay's emulated Prometheus and engine exporters: exact values from Prometheus' own algorithms."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import pytest

from llmop.autoscale.metrics import PrometheusMetrics
from llmop.autoscale.metrics import bucket_quantile as operator_bucket_quantile
from llmop.engines import queries
from llmop.engines.promql import render, selector
from llmop.engines.tgi import DURATION_BUCKETS_S as TGI_DURATION_BUCKETS_S
from llmop.engines.vllm import ITL_BUCKETS_S as VLLM_ITL_BUCKETS_S
from llmop_dev.replay.exporter import TgiPodMetrics, VllmPodMetrics, go_float, render_text, rust_float
from llmop_dev.replay.prometheus import MiniPrometheus, PromQLError, format_value
from llmop_dev.replay.promql_eval import bucket_quantile
from llmop_dev.replay.types import ScrapeTarget
from support.replay_fleet import EXPECTED, fleet, scrape_target


@dataclass
class Fixed:
    """A pod whose samples the test sets by hand."""

    values: dict[str, float] = field(default_factory=dict)

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        return [(name, {"job": "engine"}, value) for name, value in self.values.items()]


def _one(prom: MiniPrometheus, expr: str, at: float) -> float:
    rows = prom.query(expr, at)
    assert len(rows) == 1, rows
    return float(rows[0]["value"][1])


def _series_prom(name: str, points: list[tuple[float, float]]) -> MiniPrometheus:
    prom, pod = MiniPrometheus(), Fixed()
    for t, value in points:
        pod.values[name] = value
        prom.scrape(t, [scrape_target("a", pod)])
    return prom


def test_rate_extrapolates_with_zero_point_cap() -> None:
    prom = _series_prom("c_total", [(100, 2), (115, 17), (130, 32), (145, 47)])
    # [90, 150]: 45 over 45 s; start gap 10 s but the counter reaches 0 only 2 s before: 45 * (45 + 2 + 5) / 45
    assert _one(prom, "increase(c_total[60s])", 150) == pytest.approx(52.0, rel=1e-12)
    assert _one(prom, "rate(c_total[1m])", 150) == pytest.approx(52.0 / 60, rel=1e-12)
    # [110, 170]: 15..47 over 30 s; start gap 5 s (< 1.1 x 15), end gap 25 s (>= 16.5: half an interval)
    assert _one(prom, "increase(c_total[60s])", 170) == pytest.approx(30 * (30 + 5 + 7.5) / 30, rel=1e-12)
    assert prom.query("rate(c_total[10s])", 150) == []  # one sample: no rate


def test_counter_reset_and_delta() -> None:
    prom = _series_prom("c_total", [(100, 10), (115, 20), (130, 5), (145, 15)])
    # 15 - 10 + 20 (reset) = 25; zero point 45 * 10 / 25 = 18 s > 10 s gap: 25 * (45 + 10 + 5) / 45
    assert _one(prom, "increase(c_total[60s])", 150) == pytest.approx(25 * 60 / 45, rel=1e-12)
    assert _one(prom, "rate(c_total[60s])", 150) == pytest.approx(25 / 45, rel=1e-12)
    assert _one(prom, "delta(c_total[60s])", 150) == pytest.approx(5 * 60 / 45, rel=1e-12)
    assert _one(prom, "irate(c_total[60s])", 150) == pytest.approx(10 / 15, rel=1e-12)


def test_deriv_is_least_squares() -> None:
    prom = _series_prom("g", [(100, 0), (115, 3), (130, 3), (145, 9)])
    assert _one(prom, "deriv(g[60s])", 150) == pytest.approx(202.5 / 1125, rel=1e-12)
    assert _one(_series_prom("g", [(100, 4), (115, 4)]), "deriv(g[60s])", 120) == 0.0


def test_sqrt_as_prometheus_computes_it_nan_below_zero() -> None:
    prom = _series_prom("g", [(100, 6.25)])
    assert _one(prom, "sqrt(g)", 110) == 2.5
    assert _one(prom, "sqrt(g - 6.25)", 110) == 0.0
    assert math.isnan(_one(prom, "sqrt(g - 7)", 110))  # Go's math.Sqrt of a negative number


def test_histogram_quantile_matches_prometheus() -> None:
    inf = math.inf
    assert bucket_quantile(0.5, [(0.1, 10), (0.2, 30), (inf, 40)]) == pytest.approx(0.15)
    assert bucket_quantile(0.99, [(0.1, 10), (0.2, 30), (inf, 40)]) == 0.2  # lands in +Inf: highest finite edge
    assert bucket_quantile(0.5, [(0.1, 10), (0.2, 5), (inf, 20)]) == pytest.approx(0.1)  # monotonicity fix
    assert math.isnan(bucket_quantile(0.5, [(0.1, 1), (0.2, 2)]))  # no +Inf bucket
    assert math.isnan(bucket_quantile(0.5, [(0.1, 0), (inf, 0)]))
    assert bucket_quantile(1.5, [(0.1, 1), (inf, 1)]) == inf
    rng = random.Random(7)
    for _ in range(200):
        edges = [*sorted(rng.sample([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0], 5)), inf]
        counts = sorted(rng.uniform(0, 100) for _ in edges)
        buckets = list(zip(edges, counts, strict=True))
        q = rng.random()
        assert bucket_quantile(q, buckets) == pytest.approx(operator_bucket_quantile(q, buckets), nan_ok=True)


def test_staleness_of_a_removed_pod_and_lookback() -> None:
    prom, a, b = MiniPrometheus(), Fixed({"g": 1.0}), Fixed({"g": 2.0})
    prom.scrape(0, [scrape_target("a", a), scrape_target("b", b)])
    prom.scrape(15, [scrape_target("a", a), scrape_target("b", b)])
    assert _one(prom, "sum(g)", 20) == 3.0
    prom.scrape(30, [scrape_target("a", a)])  # b is gone: stale from 30 s on
    assert _one(prom, "sum(g)", 29) == 3.0
    assert _one(prom, "sum(g)", 30) == 1.0
    assert prom.query('g{pod="b"}', 40) == []
    assert len(prom.query('max_over_time(g{pod="b"}[60s])', 40)) == 1  # its history stays in ranges
    a.values.clear()  # the family disappears from a's scrape: stale too
    prom.scrape(45, [scrape_target("a", a)])
    assert prom.query("g", 50) == []
    fresh = _series_prom("g", [(0, 1.0)])
    assert fresh.query("g", 300)[0]["value"][1] == "1"
    assert fresh.query("g", 300.001) == []  # older than the 5 min lookback


def test_target_labels_win_and_matchers() -> None:
    prom, pod = MiniPrometheus(), Fixed({"vllm:x": 1.0, "vllm:y": 2.0, "other": 4.0})
    prom.scrape(0, [scrape_target("a", pod)])
    row = prom.query("vllm:x", 1)[0]
    assert row["metric"] == {"__name__": "vllm:x", "job": "engine", "namespace": "ns", "llmdeployment": "d", "pod": "a"}
    assert _one(prom, 'sum({__name__=~"vllm:.*"})', 1) == 3.0
    assert _one(prom, 'sum({__name__=~"vllm:.*",__name__!="vllm:y"})', 1) == 1.0
    assert _one(prom, "sum without (job) (other) / on (pod) sum by (pod) (vllm:y) * 2 - 1", 1) == 3.0
    assert _one(prom, "sum by (pod) (vllm:x) + sum by (pod) (vllm:y)", 1) == 3.0
    assert _one(prom, "avg(vllm:x or vllm:y)", 1) == 1.0  # `or` matches on labels without __name__

    class Labelled:
        def samples(self) -> list[tuple[str, dict[str, str], float]]:
            return [("z", {"pod": "inner"}, 1.0)]

    prom.scrape(30, [ScrapeTarget({"namespace": "ns", "pod": "p"}, Labelled())])  # type: ignore[arg-type]
    assert prom.query("z", 31)[0]["metric"] == {"__name__": "z", "namespace": "ns", "pod": "p", "exported_pod": "inner"}


@pytest.mark.parametrize(
    "expr",
    [
        "topk(3, g)",
        "rate(g[5m:1m])",
        "g offset 5m",
        "g > 1",
        "histogram_quantile(0.9, g[1m])",
        "rate(g)",
        "label_replace(g, 'a', 'b', 'c', 'd')",
        '{job=""}',
        "sum(g) by (a) by (b)",
        "g * on (a) group_left g",
    ],
)
def test_unsupported_syntax_raises(expr: str) -> None:
    prom = _series_prom("g", [(0, 1.0)])
    with pytest.raises(PromQLError):
        prom.query(expr, 1)


def test_duplicate_labelsets_after_rate_raise() -> None:
    pod = Fixed({"a_total": 1.0, "b_total": 1.0})
    prom = MiniPrometheus()
    prom.scrape(0, [scrape_target("x", pod)])
    prom.scrape(15, [scrape_target("x", pod)])
    with pytest.raises(PromQLError, match="same labelset"):
        prom.query('rate({__name__=~".*_total"}[1m])', 20)


def test_value_formats() -> None:
    assert [format_value(v) for v in (1.0, 0.1, 1e21, math.nan, -math.inf)] == [
        "1",
        "0.1",
        "1" + "0" * 21,
        "NaN",
        "-Inf",
    ]
    assert [go_float(v) for v in (1.0, 10000.0, 1e6, 0.025)] == ["1.0", "10000.0", "1e+06", "0.025"]
    assert [rust_float(v) for v in (1.0, 40.95, 4095.0, TGI_DURATION_BUCKETS_S[0])] == [
        "1", "40.95", "4095", "0.00015000000000000001"
    ]  # fmt: skip


def test_vllm_exposition_matches_prometheus_client() -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    registry = prometheus_client.CollectorRegistry()
    real = prometheus_client.Histogram(
        "vllm:inter_token_latency_seconds", "ITL", ["model_name", "engine"], registry=registry,
        buckets=list(VLLM_ITL_BUCKETS_S),
    )  # fmt: skip
    ours = VllmPodMetrics(model_name="m")
    for value, count in ((0.004, 3), (0.025, 2), (0.3, 1), (100.0, 1)):
        ours.observe_itl(value, count)
        for _ in range(count):
            real.labels("m", "0").observe(value)
    from prometheus_client.parser import text_string_to_metric_families

    def parsed(text: str) -> set[tuple[str, frozenset[tuple[str, str]], float]]:
        families = text_string_to_metric_families(text)
        found = {(s.name, frozenset(s.labels.items()), s.value) for f in families for s in f.samples}
        return {item for item in found if not item[0].endswith("_created")}

    expected = parsed(prometheus_client.generate_latest(registry).decode())
    assert parsed(render_text(s for s in ours.samples() if "inter_token" in s[0])) == expected
    assert (
        len(expected) == 22
        and ("vllm:inter_token_latency_seconds_count", frozenset({("model_name", "m"), ("engine", "0")}), 7.0)
        in expected
    )
    # the `le` strings themselves, as floatToGoString spells them
    assert [labels["le"] for name, labels, _ in ours.samples() if name.endswith("_bucket") and "inter_token" in name][
        :3
    ] == ["0.01", "0.025", "0.05"]


def test_tgi_gauges_absent_before_the_first_request() -> None:
    pod = TgiPodMetrics()
    pod.set_state(0, 0, 0.0)
    assert pod.samples() == []
    prom = MiniPrometheus()
    prom.scrape(0, [scrape_target("t", pod)])
    result = PrometheusMetrics("mini", runner=prom.runner(1)).observe("ns", "d", "tgi")
    assert (result.error, result.running, result.waiting, result.latency_ms, result.samples) == (None, 0, 0, None, 0)
    pod.set_state(0, 1, 0.0)  # a request is queued: tgi_queue_size appears, tgi_batch_current_size not yet
    assert {name for name, _, _ in pod.samples()} == {"tgi_queue_size"}
    pod.observe_step("prefill", 0.1, 1)
    pod.set_state(1, 0, 0.0)
    names = {name for name, _, _ in pod.samples()}
    assert {"tgi_queue_size", "tgi_batch_current_size", "tgi_batch_inference_duration_count"} <= names
    assert "tgi_request_success" not in names


@pytest.mark.parametrize(("engine", "escaped"), [("vllm", False), ("vllm", True), ("tgi", False)])
def test_every_production_query_on_exporter_data(engine: str, escaped: bool) -> None:
    """Every query reads the exact figures; for vLLM also when the names arrive escaped (`vllm_...`)."""
    prom, _ = fleet(engine, escaped)
    if escaped:
        assert not prom.query('count({__name__=~"vllm:.+"})', 60) and prom.query("vllm_num_requests_running", 60)
    sel = selector("ns", "d")
    done = set()
    for item in queries(engine):
        expr = render(item.template, sel, window_s=60, quantile=0.95, rate_window_s=60)
        rows = prom.query(expr, 60)
        if item.name == "decode_latency_buckets":
            by_le = {row["metric"]["le"]: float(row["value"][1]) for row in rows}
            assert all(set(row["metric"]) == {"le"} for row in rows)
            if engine == "vllm":
                assert by_le["0.025"] == 0 and by_le["0.05"] == pytest.approx(2 * 100 / 15)
                assert by_le["0.1"] == pytest.approx(16) and by_le["+Inf"] == pytest.approx(16)
            else:
                assert by_le["+Inf"] == pytest.approx(2 * 11 / 15) and len(by_le) == 36
            continue
        assert len(rows) == 1, (item.name, rows)
        assert rows[0]["metric"] == {"namespace": "ns", "llmdeployment": "d"}, item.name
        assert float(rows[0]["value"][1]) == pytest.approx(EXPECTED[engine][item.name], rel=1e-9), item.name
        done.add(item.name)
    assert done == set(EXPECTED[engine])
    observed = PrometheusMetrics("mini", runner=prom.runner(60)).observe("ns", "d", engine, window_s=60)
    assert observed.ok and observed.latency_ms == pytest.approx(EXPECTED[engine]["decode_latency_quantile"] * 1000)
    assert observed.mean_latency_ms == pytest.approx(EXPECTED[engine]["decode_latency_mean"] * 1000, rel=1e-9)


def test_history_is_bounded() -> None:
    prom, pod = MiniPrometheus(retention_s=900), Fixed({"g": 1.0})
    for step in range(200):
        prom.scrape(15 * step, [scrape_target("a", pod)])
    with pytest.raises(PromQLError, match="retention"):
        prom.query("rate(g[1h])", 15 * 199)
    assert len(prom.query("g[900s]", 15 * 199)[0]["values"]) == 61
