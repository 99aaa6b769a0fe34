"""The HPA and KEDA baselines reproduce upstream's arithmetic: exact replica counts from canned Prometheus answers."""

from __future__ import annotations

from typing import Any

import pytest

from llmop_dev.replay.baselines import BASELINES, BaselineParams, Keda, keda_milli, make_baseline
from llmop_dev.replay.hpa import Hpa, PodsAverageValue
from llmop_dev.replay.types import PodView, View

PARAMS: dict[str, Any] = {"min_replicas": 1, "max_replicas": 50, "capacity_rps": 5.0, "capacity_concurrency": 10.0}


class Prom:
    """A canned Prometheus: per metric name, per-pod values (answered for `by (pod)` queries) or one total."""

    def __init__(self, answers: dict[str, dict[str, float] | list[float] | float | str | None]) -> None:
        self.answers = answers
        self.exprs: list[str] = []

    def __call__(self, expr: str) -> list[dict[str, Any]]:
        self.exprs.append(expr)
        for name, answer in self.answers.items():
            if name in expr:
                if answer is None:
                    return []
                if isinstance(answer, list):
                    return [{"metric": {"i": str(i)}, "value": [0, str(v)]} for i, v in enumerate(answer)]
                if isinstance(answer, dict):
                    return [{"metric": {"pod": pod}, "value": [0, str(v)]} for pod, v in answer.items()]
                return [{"metric": {}, "value": [0, str(answer)]}]
        return []


RPS = "gateway_requests_total"


def pods(ready: int, starting: int = 0) -> tuple[PodView, ...]:
    return tuple(PodView(f"p{i}", i < ready, 0.0) for i in range(ready + starting))


def each(value: float, n: int) -> dict[str, float]:
    return {f"p{i}": value for i in range(n)}


def view(now: float, fleet: tuple[PodView, ...], prom: Prom) -> View:
    return View(now=now, pods=fleet, query=prom)


def rps(values: dict[str, float] | float | None) -> Prom:
    return Prom({"gateway_requests_total": values})


# --- replica calculator -------------------------------------------------------------------------------------------


def test_tolerance_band_holds_and_outside_it_scales_to_the_exact_count() -> None:
    hpa = make_baseline("hpa-rps", **PARAMS)  # target 0.8 x 5 = 4 rps per pod
    assert hpa.desired(view(0, pods(4), rps(each(4.2, 4)))) == 4  # ratio 1.05
    assert hpa.desired(view(15, pods(4), rps(each(4.4, 4)))) == 4  # ratio 1.1: the band is inclusive
    assert hpa.desired(view(30, pods(4), rps(each(4.8, 4)))) == 5  # ratio 1.2: ceil(1.2 x 4)


def test_missing_metric_counts_zero_on_scale_up_and_target_on_scale_down() -> None:
    # p3 is Running, loading its model, no sample yet (missing). Target 4 rps per pod.
    hpa = make_baseline("hpa-rps", **PARAMS)
    # up: ratio 1.15 over the 3 with samples; with p3 at 0 it is 13.8/4/4 = 0.8625, the direction flips: hold
    assert hpa.desired(view(0, pods(3, 1), rps(each(4.6, 3)))) == 4
    # down: (2+2+2+4)/4 = 2.5 -> ratio 0.625 -> ceil(2.5) = 3 (the 3 with samples alone would give ceil(0.5 x 3) = 2)
    hpa = make_baseline("hpa-rps", **PARAMS)
    assert hpa.desired(view(0, pods(3, 1), rps(each(2.0, 3)))) == 3


def test_pending_pods_are_dropped_on_scale_down_and_zero_on_scale_up() -> None:
    down = Hpa("x", PodsAverageValue((RPS,), 4.0, pending=True), 1, 50)
    assert down.desired(view(0, pods(3, 1), rps(each(2.0, 3)))) == 2  # ceil(0.5 x 3 ready)
    up = Hpa("x", PodsAverageValue((RPS,), 4.0, pending=True), 1, 50)
    assert up.desired(view(0, pods(3, 1), rps(each(4.6, 3)))) == 4  # 13.8/4 = 0.8625 flips direction: hold
    assert up.desired(view(15, pods(3, 1), rps(each(8.0, 3)))) == 6  # 24/4 = 6 -> ratio 1.5 -> ceil(1.5 x 4)


def test_a_running_pod_with_a_sample_counts_although_not_ready() -> None:
    hpa = make_baseline("hpa-rps", **PARAMS)
    assert hpa.desired(view(0, pods(3, 1), rps(each(6.0, 4)))) == 6  # ratio 1.5 over all 4 pods


def test_no_samples_at_all_means_no_scaling() -> None:
    hpa = make_baseline("hpa-rps", **PARAMS)
    assert hpa.desired(view(0, pods(4), rps(None))) == 4
    assert "FailedGetMetric" in hpa.reasons[-1][1]


# --- behaviour: rate limits and stabilization ---------------------------------------------------------------------


def test_scale_up_is_limited_to_max_of_double_and_plus_four_per_15_s() -> None:
    hpa = make_baseline("hpa-rps", **PARAMS)
    assert hpa.desired(view(0, pods(2), rps(each(40.0, 2)))) == 6  # wants 20; max(2 + 4, 2 x 2)
    assert hpa.desired(view(5, pods(2, 4), rps(each(40.0, 2)))) == 6  # same period: 4 already added from 2
    assert hpa.desired(view(15, pods(6), rps(each(40.0, 6)))) == 12  # new period: max(6 + 4, 2 x 6)
    assert hpa.desired(view(30, pods(12), rps(each(40.0, 12)))) == 24


def test_scale_down_takes_the_highest_recommendation_of_the_last_300_s() -> None:
    hpa = make_baseline("hpa-rps", **PARAMS)
    assert hpa.desired(view(0, pods(10), rps(each(4.0, 10)))) == 10  # recommends 10
    assert hpa.desired(view(15, pods(10), rps(each(2.4, 10)))) == 10  # recommends 6
    for t in range(30, 300, 15):
        assert hpa.desired(view(t, pods(10), rps(each(1.2, 10)))) == 10  # recommends 3
    assert hpa.desired(view(300, pods(10), rps(each(1.2, 10)))) == 6  # the 10 at t=0 left the window
    assert hpa.desired(view(315, pods(6), rps(each(2.0, 6)))) == 3


def test_min_and_max_clamp() -> None:
    hpa = make_baseline("hpa-rps", **{**PARAMS, "min_replicas": 2, "max_replicas": 7})
    assert hpa.desired(view(0, pods(5), rps(each(40.0, 5)))) == 7
    assert hpa.desired(view(15, pods(9), rps(None))) == 7  # above max: back to max without a metric
    hpa = make_baseline("hpa-rps", **{**PARAMS, "min_replicas": 2, "max_replicas": 7})
    assert hpa.desired(view(0, pods(5), rps(each(0.1, 5)))) == 2


def test_legacy_path_without_behavior() -> None:
    hpa = Hpa("x", PodsAverageValue((RPS,), 4.0), 1, 50, behavior=None)
    assert hpa.desired(view(0, pods(1), rps(each(40.0, 1)))) == 4  # max(2 x 1, 4)
    assert hpa.desired(view(15, pods(3), rps(each(40.0, 3)))) == 6  # max(2 x 3, 4)
    hpa = Hpa("x", PodsAverageValue((RPS,), 4.0), 1, 50, behavior=None)
    assert hpa.desired(view(0, pods(10), rps(each(4.0, 10)))) == 10
    assert hpa.desired(view(300, pods(10), rps(each(1.2, 10)))) == 10  # legacy keeps a sample exactly 300 s old
    assert hpa.desired(view(315, pods(10), rps(each(1.2, 10)))) == 3  # and has no scale-down rate limit


# --- the named baselines ----------------------------------------------------------------------------------------


def test_concurrency_adds_running_and_waiting_per_pod() -> None:
    hpa = make_baseline("hpa-concurrency", **PARAMS)  # target 8 in flight per pod
    prom = Prom({"vllm:num_requests_running": each(10.0, 3), "vllm:num_requests_waiting": {"p0": 6.0, "p1": 6.0}})
    # p2 has no waiting series: PromQL's `+` drops it, so it is missing: 32000 // 3 / 8000 x 3 = 3.99975 -> 4
    assert hpa.desired(view(0, pods(3), prom)) == 4
    assert prom.exprs == [
        'sum by (pod) (vllm:num_requests_running{namespace="bench",llmdeployment="bench"})',
        'sum by (pod) (vllm:num_requests_waiting{namespace="bench",llmdeployment="bench"})',
    ]


def test_tpot_is_a_value_target_times_ready_pods() -> None:
    hpa = make_baseline("hpa-tpot", **{**PARAMS, "target_ms": 50.0, "percentile": 95.0})
    prom = Prom({"inter_token_latency": 0.075})
    assert hpa.desired(view(0, pods(3, 1), prom)) == 5  # ceil(1.5 x 3 ready); the starting pod is not counted
    assert prom.exprs == [
        "histogram_quantile(0.95, sum by (le) (rate(vllm:inter_token_latency_seconds_bucket"
        '{namespace="bench",llmdeployment="bench"}[2m])))'
    ]
    assert hpa.desired(view(15, pods(4), Prom({"inter_token_latency": "NaN"}))) == 4


def test_keda_average_value_is_total_over_threshold() -> None:
    keda = make_baseline("keda-running", **PARAMS)  # threshold 8
    assert keda.desired(view(0, pods(3), Prom({"running": 25.0}))) == 3  # 25 / 24 = 1.04: within tolerance
    assert keda.desired(view(15, pods(2, 1), Prom({"running": 37.0}))) == 5  # ceil(37 / 8); readiness ignored


def test_keda_scale_up_uses_the_legacy_limit_and_empty_is_zero() -> None:
    keda = make_baseline("keda-running", **PARAMS)
    assert keda.desired(view(0, pods(1), Prom({"running": 80.0}))) == 4  # max(2 x 1, 4), no behavior set
    keda = make_baseline("keda-running", **PARAMS)
    assert keda.desired(view(0, pods(3), Prom({"running": None}))) == 1  # ignoreNullValues: 0 -> min
    assert keda.desired(view(15, pods(3), Prom({"running": [1.0, 2.0]}))) == 3  # "returned multiple elements"


def test_keda_queries_live_on_every_sync_unless_cached() -> None:
    prom = Prom({"running": 16.0})
    live = make_baseline("keda-running", **PARAMS)
    assert isinstance(live, Keda) and live.interval_s == 15.0
    assert live.desired(view(0, pods(2), prom)) == 2  # poll + HPA: 2 queries
    prom.answers["running"] = 40.0
    assert live.desired(view(15, pods(3), prom)) == 5  # no poll due; the HPA's query is live: ceil(40 / 8)
    assert live.queries == 3
    cached = Keda("c", "running", 8.0, 1, 50, use_cached_metrics=True)
    prom.answers["running"] = 16.0
    assert cached.desired(view(0, pods(2), prom)) == 2
    prom.answers["running"] = 40.0
    assert cached.desired(view(15, pods(2), prom)) == 2  # the 16 of the t=0 poll
    assert cached.desired(view(30, pods(3), prom)) == 5  # polled again at 30 s
    assert cached.queries == 2


def test_keda_scales_to_zero_only_after_cooldown() -> None:
    keda = Keda("z", "running", 8.0, 0, 10)
    assert keda.desired(view(0, pods(2), Prom({"running": 4.0}))) == 1  # active; the HPA's min is 1
    idle = Prom({"running": 0.0})
    assert keda.desired(view(270, pods(1), idle)) == 1
    assert keda.desired(view(330, pods(1), idle)) == 0  # last active at 0, cooldown 300 s
    assert keda.desired(view(360, (), Prom({"running": 3.0}))) == 1


def test_keda_waiting_threshold_and_tgi_names() -> None:
    keda = make_baseline("keda-waiting", **{**PARAMS, "engine": "tgi"})
    assert isinstance(keda, Keda) and keda.threshold == 5.0  # 5 rps x 1 s of queue per replica
    assert keda.expr == 'sum by (llmdeployment) (tgi_queue_size{namespace="bench",llmdeployment="bench"})'
    prom = Prom({"gateway_requests_total": each(4.8, 4)})
    assert make_baseline("hpa-rps", **{**PARAMS, "engine": "tgi"}).desired(view(0, pods(4), prom)) == 5
    assert prom.exprs == ['sum by (pod) (rate(gateway_requests_total{namespace="bench",llmdeployment="bench"}[1m]))']


def test_aliases_fix_the_fraction_at_0_8() -> None:
    assert set(BASELINES) == {"hpa-rps", "hpa-concurrency", "hpa-tpot", "keda-running", "keda-waiting", "hpa", "keda"}
    hpa = make_baseline("hpa", **{**PARAMS, "fraction": 0.6})
    assert isinstance(hpa, Hpa) and hpa.name == "hpa" and isinstance(hpa.metric, PodsAverageValue)
    assert hpa.metric.target == 4.0 and "gateway_requests_total" in hpa.metric.exprs[0]
    keda = make_baseline("keda", **{**PARAMS, "fraction": 0.6})
    assert isinstance(keda, Keda) and keda.threshold == 8.0 and "vllm:num_requests_running" in keda.expr
    assert make_baseline("keda-running", **{**PARAMS, "fraction": 0.6}).threshold == 6.0  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        make_baseline("hpa-cpu", **PARAMS)
    with pytest.raises(ValueError):
        BaselineParams(**{**PARAMS, "fraction": 1.5})


def test_keda_quantities_round_to_milli() -> None:
    # fmt.Sprintf("%.3f") rounds the binary value correctly, as Python's format does; 1.2345 is 1.23449999...
    assert [keda_milli(v) for v in (1.2345, 2.0006, 0.0004, -1.0, float("nan"))] == [1234, 2001, 0, 0, 0]


def test_keda_polling_faster_than_the_hpa_sync_does_not_speed_the_hpa_up() -> None:
    keda = Keda("f", "running", 8.0, 1, 50, polling_s=5.0)
    assert keda.interval_s == 5.0
    prom = Prom({"running": 40.0})
    assert keda.desired(view(0, pods(3), prom)) == 5
    assert keda.desired(view(5, pods(5), Prom({"running": 100.0}))) == 5  # polled; the HPA syncs again at 15 s
    assert keda.desired(view(15, pods(5), Prom({"running": 100.0}))) == 10  # max(2 x 5, 4)


def test_min_zero_keeps_the_hpa_at_one_and_lets_keda_go_to_zero() -> None:
    hpa = make_baseline("hpa-rps", **{**PARAMS, "min_replicas": 0})
    assert isinstance(hpa, Hpa) and hpa.min_replicas == 1
    keda = make_baseline("keda-running", **{**PARAMS, "min_replicas": 0})
    assert isinstance(keda, Keda) and keda.hpa.min_replicas == 1 and keda.min_replicas == 0
