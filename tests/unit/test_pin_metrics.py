"""Pins the metrics source: every Observation field read from two engine pods through the replay's emulated
Prometheus (in-process and over HTTP), the failure paths, and the histogram helpers against Prometheus' algorithm."""

from __future__ import annotations

import json
import math
import random
import socket
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from llmop.autoscale.metrics import (
    Observation,
    PrometheusMetrics,
    _scalar,
    bucket_quantile,
    ms_text,
    resolve_quantile,
)
from llmop.engines.vllm import ITL_BUCKETS_S as VLLM_ITL_BUCKETS_S
from llmop_dev.replay.exporter import TgiPodMetrics, VllmPodMetrics
from llmop_dev.replay.prometheus import MiniPrometheus
from llmop_dev.replay.promql_eval import bucket_quantile as prometheus_bucket_quantile
from support.canary import Answer, Canary, canary
from support.replay_fleet import EXPECTED, fleet, scrape_target

NOW = 1234.5


def _fields(obs: Observation) -> dict[str, object]:
    """Every field but the buckets, for one exact comparison."""
    return {name: getattr(obs, name) for name in Observation.__dataclass_fields__ if name != "buckets"}


def _expected(engine: str, latency_s: float, ttft_s: float, percentile: float = 95.0) -> dict[str, object]:
    figures = EXPECTED[engine]
    return {
        "latency_ms": pytest.approx(latency_s * 1000, rel=1e-9),
        "samples": pytest.approx(figures["decode_samples"], rel=1e-9),
        "running": figures["running"],
        "waiting": figures["waiting"],
        "kv_usage": pytest.approx(figures["kv_usage"], rel=1e-9) if "kv_usage" in figures else None,
        "observed_at": NOW,
        "error": None,
        "below_resolution": False,
        "percentile": percentile,
        "ttft_ms": pytest.approx(ttft_s * 1000, rel=1e-9),
        "mean_latency_ms": pytest.approx(figures["decode_latency_mean"] * 1000, rel=1e-9),
        "request_rate": pytest.approx(figures["request_rate"], rel=1e-9),
        "mean_prompt_tokens": pytest.approx(figures["mean_prompt_tokens"], rel=1e-9),
        "mean_output_tokens": pytest.approx(figures["mean_output_tokens"], rel=1e-9),
        "waiting_growth_rps": pytest.approx(figures["waiting_growth"], rel=1e-9),
        "source": "prometheus",
        "note": "",
        "extra": {},
    }


def _observe(prom: MiniPrometheus, engine: str, **kwargs: float) -> Observation:
    return PrometheusMetrics("mini", runner=prom.runner(60), clock=lambda: NOW).observe("ns", "d", engine, **kwargs)


@pytest.mark.parametrize("engine", ["vllm", "tgi"])
def test_every_field_of_an_observation_at_the_default_percentile(engine: str) -> None:
    prom, _ = fleet(engine)
    figures = EXPECTED[engine]
    obs = _observe(prom, engine, window_s=60)
    assert _fields(obs) == _expected(engine, figures["decode_latency_quantile"], figures["ttft_quantile"])


def test_the_percentile_window_and_ttft_percentile_reach_the_queries() -> None:
    prom, _ = fleet("vllm")
    # per second: 2 pods x 100 tokens at 30 ms and 20 at 90 ms per 15 s; p90 is 40 % into the (75, 100] ms bucket
    obs = _observe(prom, "vllm", window_s=60, percentile=90.0, ttft_percentile=50.0)
    # every TTFT is 300 ms, in the (250, 500] ms bucket: the p50 is half-way
    assert _fields(obs) == _expected("vllm", 0.075 + 0.025 * (0.9 * 16 - 40 / 3) / (16 - 40 / 3), 0.375, 90.0)
    halved = _observe(prom, "vllm", window_s=30)
    assert halved.samples == pytest.approx(16 * 30, rel=1e-9)  # the same rate over a 30 s window
    assert _observe(prom, "vllm", window_s=60, percentile=90.0).ttft_ms == pytest.approx(250 + 250 * 0.9)


def test_the_decode_buckets_are_kept_sorted_as_rates() -> None:
    prom, _ = fleet("vllm")
    buckets = _observe(prom, "vllm", window_s=60).buckets
    per_pod = [(0.03, 100), (0.09, 20)]  # tokens at each latency in every 15 s
    expected = [(edge, 2 * sum(n for value, n in per_pod if value <= edge) / 15) for edge in VLLM_ITL_BUCKETS_S]
    assert [bound for bound, _ in buckets] == [*VLLM_ITL_BUCKETS_S, math.inf]
    assert [count for _, count in buckets] == pytest.approx([count for _, count in expected] + [16.0], rel=1e-9)


def _scraped(exported: object, traffic: Callable[[int], None] | None = None, scrapes: int = 5) -> MiniPrometheus:
    """One pod scraped every 15 s from 0 s; `traffic(step)` runs before each scrape after the first."""
    prom = MiniPrometheus()
    for step in range(scrapes):
        if step and traffic is not None:
            traffic(step)
        prom.scrape(15 * step, [scrape_target("p0", exported)])
    return prom


def _fine_pod(argv: list[str] | None = None) -> VllmPodMetrics:
    pod = VllmPodMetrics.for_argv(argv or [])
    pod.set_state(1, 0, 0.1)
    return pod


def _with_tokens(pod: VllmPodMetrics, latency_s: float) -> MiniPrometheus:
    return _scraped(pod, lambda step: pod.observe_itl(latency_s, 150))


@dataclass
class Filtered:
    """A pod whose families named in `drop` do not reach Prometheus (dropped by a relabelling rule, say), and whose
    `renamed` ones arrive renamed."""

    pod: Any
    drop: tuple[str, ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        names = dict(self.renamed)
        kept = [sample for sample in self.pod.samples() if not sample[0].startswith(self.drop)]
        return [(names.get(name, name), labels, value) for name, labels, value in kept]


def test_a_quantile_in_vllms_coarse_first_bucket_is_its_edge_marked_below_resolution() -> None:
    obs = _observe(_with_tokens(_fine_pod(), 0.004), "vllm", window_s=60)
    assert (obs.latency_ms, obs.below_resolution, obs.latency_text()) == (10.0, True, "<= 10 ms")
    assert obs.mean_latency_ms == pytest.approx(4.0, rel=1e-9) and obs.samples == pytest.approx(600, rel=1e-9)


def test_a_one_millisecond_ladder_reads_the_quantile_exactly() -> None:
    ladder = ["--custom-histogram-buckets", json.dumps({"inter_token_latency": [0.001 * i for i in range(1, 51)]})]
    obs = _observe(_with_tokens(_fine_pod(ladder), 0.0042), "vllm", window_s=60)
    # every token in the (4, 5] ms bucket: the p95 interpolates 95 % into it
    assert (obs.latency_ms, obs.below_resolution) == (pytest.approx(4.95, rel=1e-9), False)
    assert obs.latency_text() == "5.0 ms"


def test_no_tokens_in_the_window_reads_no_latency_and_asks_no_mean() -> None:
    asked: list[str] = []
    prom = _scraped(_fine_pod())

    def runner(expr: str) -> list[dict[str, object]]:
        asked.append(expr)
        return prom.query(expr, 60)

    obs = PrometheusMetrics("mini", runner=runner, clock=lambda: NOW).observe("ns", "d", "vllm", window_s=60)
    assert (obs.error, obs.latency_ms, obs.samples, obs.mean_latency_ms, obs.running, obs.waiting) == (
        None, None, 0.0, None, 1.0, 0.0,
    )  # fmt: skip
    assert obs.below_resolution is False
    assert not any("inter_token_latency_seconds_sum" in expr for expr in asked)  # no mean asked without samples
    assert any("inter_token_latency_seconds_bucket" in expr for expr in asked)
    assert obs.kv_usage == pytest.approx(0.1)


def test_missing_gauges_are_an_error_naming_the_deployment() -> None:
    obs = PrometheusMetrics("mini", runner=MiniPrometheus().runner(60), clock=lambda: NOW).observe(
        "ns", "d", "vllm", percentile=90.0
    )
    assert _fields(obs) == {
        **_fields(Observation.failed("x", NOW, 90.0)),
        "error": "no running/waiting series for ns/d in Prometheus (no vllm pod scraped?)",
    }


def test_a_tgi_pod_that_never_served_reads_as_no_traffic() -> None:
    pod = TgiPodMetrics()
    obs = _observe(_scraped(pod), "tgi", percentile=90.0)
    assert _fields(obs) == {
        **_fields(Observation(None, 0.0, 0.0, 0.0, None, NOW)),
        "percentile": 90.0,
    }


@pytest.mark.parametrize("served", ["decode steps", "finished requests"])
def test_tgi_data_without_its_gauges_is_an_error(served: str) -> None:
    pod = TgiPodMetrics()

    def traffic(step: int) -> None:
        if served == "decode steps":
            pod.observe_step("decode", 0.02, 4)
        else:
            pod.observe_finished(10, 10, 1.0, 0.1)

    prom = _scraped(Filtered(pod, drop=("tgi_queue_size", "tgi_batch_current_size")), traffic)
    obs = _observe(prom, "tgi", window_s=60)
    assert obs.error == "no running/waiting series for ns/d in Prometheus (no tgi pod scraped?)"


@pytest.mark.parametrize(
    ("raised", "error"),
    [
        (ValueError("boom\nsecond line"), "prometheus mini: ValueError: boom"),
        (ValueError(""), "prometheus mini: ValueError: ValueError"),
        (KeyError("k" * 400), "prometheus mini: KeyError: '" + "k" * 299),
    ],
)
def test_a_failing_query_is_reported_never_raised(raised: Exception, error: str) -> None:
    def runner(expr: str) -> list[dict[str, object]]:
        raise raised

    obs = PrometheusMetrics("mini", runner=runner, clock=lambda: NOW).observe("ns", "d", "vllm", percentile=99.0)
    assert _fields(obs) == {**_fields(Observation.failed("x", NOW, 99.0)), "error": error}


def _prometheus_api(prom: MiniPrometheus, at: float, result: object | None = None) -> AbstractContextManager[Canary]:
    """A canary answering /api/v1/query from `prom` at `at` (or always `result`)."""

    def respond(path: str) -> Answer:
        split = urlsplit(path)
        if split.path != "/api/v1/query":
            return Answer(404, "not found")
        (expr,) = parse_qs(split.query)["query"]
        answer = prom.query(expr, at) if result is None else result
        return Answer(200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": answer}}))

    return canary(respond)


def test_over_http_the_observation_is_the_same_as_in_process() -> None:
    prom, _ = fleet("tgi")
    with _prometheus_api(prom, 60) as server:
        metrics = PrometheusMetrics(server.url, timeout_s=2, clock=lambda: NOW)
        first = metrics.observe("ns", "d", "tgi", window_s=60)
        again = metrics.observe("ns", "d", "tgi", window_s=60)
    assert first == again == _observe(prom, "tgi", window_s=60)
    assert first.ok and first.samples == pytest.approx(88, rel=1e-9)


def test_an_answer_that_is_not_a_list_is_a_failed_query() -> None:
    with _prometheus_api(MiniPrometheus(), 60, result={"not": "a vector"}) as server:
        obs = PrometheusMetrics(server.url, timeout_s=2, clock=lambda: NOW).observe("ns", "d", "vllm")
    assert obs.error == f"prometheus {server.url}: QueryFailed: unexpected answer dict"
    assert server.hits() == 1


def test_scalar_reads_the_first_series_and_drops_what_is_not_a_number() -> None:
    assert _scalar([{"value": [0, "3.5"]}, {"value": [0, "7"]}]) == 3.5
    assert _scalar([{"value": [0, "-0.25"]}]) == -0.25
    for rows in ([], [{}], [{"value": [0, "NaN"]}], [{"value": [0, "+Inf"]}], [{"value": [0, "-Inf"]}]):
        assert _scalar(rows) is None, rows
    assert _scalar([{"value": [0, None]}]) is None and _scalar([{"value": [0, "abc"]}]) is None


def test_share_above_an_edge() -> None:
    obs = Observation(1.0, 10.0, 1.0, 0.0, None, 0.0, buckets=((0.01, 5.0), (0.02, 8.0), (math.inf, 10.0)))
    assert [obs.share_above(edge) for edge in (0.01, 0.02, 0.015)] == [0.5, pytest.approx(0.2), None]
    assert obs.share_above(0.02 * (1 + 5e-10)) == pytest.approx(0.2)  # within a relative 1e-9 of the edge
    assert obs.share_above(0.02 * (1 + 2e-9)) is None
    at_zero = Observation(1.0, 10.0, 1.0, 0.0, None, 0.0, buckets=((0.0, 2.0), (0.01, 2.0), (math.inf, 10.0)))
    assert at_zero.share_above(0.0) == pytest.approx(0.8) and at_zero.share_above(1e-12) is None
    uneven = Observation(1.0, 10.0, 1.0, 0.0, None, 0.0, buckets=((0.01, 12.0), (math.inf, 10.0)))
    assert uneven.share_above(0.01) == 0.0  # a bucket above the total (rates of a scrape race) is no share
    slow = Observation(1.0, 0.5, 1.0, 0.0, None, 0.0, buckets=((0.01, 0.125), (math.inf, 0.5)))
    assert slow.share_above(0.01) == 0.75  # rates below one observation a second are data too
    empty = Observation(1.0, 0.0, 1.0, 0.0, None, 0.0, buckets=((0.01, 0.0), (math.inf, 0.0)))
    assert empty.share_above(0.01) is None
    assert Observation(1.0, 10.0, 1.0, 0.0, None, 0.0, buckets=((0.01, 5.0),)).share_above(0.01) is None


def test_latency_text_and_ms_text() -> None:
    assert [ms_text(value) for value in (61.4, 10.0, 9.99, 8.54, 0.04)] == [
        "61 ms",
        "10 ms",
        "10.0 ms",
        "8.5 ms",
        "0.0 ms",
    ]
    assert Observation(None, 0.0, 0.0, 0.0, None, 0.0, below_resolution=True).latency_text() == "n/a"
    assert Observation(8.5, 1.0, 0.0, 0.0, None, 0.0).latency_text() == "8.5 ms"


def test_failed_has_nothing_but_the_error() -> None:
    assert _fields(Observation.failed("why", 7.0)) == {
        **_fields(Observation(None, 0.0, None, None, None, 7.0)),
        "error": "why",
    }
    assert Observation.failed("why", 7.0, 99.0).percentile == 99.0 and not Observation.failed("why", 7.0).ok


def test_bucket_quantile_is_prometheus_on_random_histograms() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        bounds = sorted(rng.sample([round(0.001 * i, 3) for i in range(-3, 200)], rng.randint(1, 8)))
        counts = sorted(rng.choice([0.0, float(rng.randint(0, 50))]) for _ in bounds)
        total = counts[-1] + rng.choice([0.0, float(rng.randint(1, 20))])
        if total <= 0:
            continue
        buckets = [*zip(bounds, counts, strict=True), (math.inf, total)]
        rng.shuffle(buckets)
        q = rng.choice([1.0, 0.5, 0.95, 0.99, rng.random()])
        ours, theirs = bucket_quantile(q, buckets), prometheus_bucket_quantile(q, buckets)
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15), (q, buckets)


def test_bucket_quantile_edges() -> None:
    inf = math.inf
    assert math.isnan(bucket_quantile(0.5, [(inf, 3.0)]))  # one bucket
    assert math.isnan(bucket_quantile(0.5, [(0.01, 1.0), (0.02, 3.0)]))  # no +Inf
    assert math.isnan(bucket_quantile(0.5, [(0.01, 0.0), (inf, 0.0)]))  # nothing observed
    assert bucket_quantile(0.5, [(0.01, 1.0), (0.02, 1.0), (inf, 4.0)]) == 0.02  # in +Inf: the highest edge
    assert bucket_quantile(0.5, [(-0.5, 3.0), (0.01, 3.0), (inf, 4.0)]) == -0.5  # a first edge <= 0 is its value
    assert bucket_quantile(0.5, [(0.0, 3.0), (0.01, 3.0), (inf, 4.0)]) == 0.0
    assert bucket_quantile(0.25, [(0.02, 4.0), (0.01, 0.0), (inf, 4.0)]) == pytest.approx(0.0125)  # sorted first
    # a count below the one before is raised to it (scrape races), as Prometheus does
    assert bucket_quantile(0.75, [(0.01, 2.0), (0.02, 1.0), (0.03, 4.0), (inf, 4.0)]) == pytest.approx(0.025)
    assert bucket_quantile(0.0, [(0.01, 0.0), (0.02, 5.0), (inf, 5.0)]) == 0.01  # an empty bucket: its upper edge
    assert bucket_quantile(0.5, [(0.01, 4.0), (inf, 4.0)]) == pytest.approx(0.005)


def test_resolve_quantile_marks_only_a_coarse_first_bucket() -> None:
    inf = math.inf
    assert resolve_quantile(0.95, [(0.01, 10.0), (0.02, 10.0), (inf, 10.0)]) == (0.01, True)
    assert resolve_quantile(1.0, [(0.01, 10.0), (0.02, 10.0), (inf, 10.0)]) == (0.01, True)
    assert resolve_quantile(0.95, [(0.002, 10.0), (inf, 10.0)]) == (0.002, True)
    assert resolve_quantile(0.95, [(0.001, 10.0), (0.002, 10.0), (inf, 10.0)]) == (pytest.approx(0.00095), False)
    assert resolve_quantile(0.95, [(0.01, 5.0), (0.02, 10.0), (inf, 10.0)]) == (pytest.approx(0.019), False)
    value, below = resolve_quantile(0.95, [(0.01, 0.0), (inf, 0.0)])
    assert math.isnan(value) and below is False


def test_one_token_in_the_window_is_read() -> None:
    pod = _fine_pod()

    def traffic(step: int) -> None:
        if step == 2:
            pod.observe_itl(0.02, 1)

    obs = _observe(_scraped(pod, traffic), "vllm", window_s=60)
    assert obs.samples == pytest.approx(1.0, rel=1e-12) and obs.samples <= 1.0
    assert obs.latency_ms == pytest.approx((0.01 + 0.015 * 0.95) * 1000, rel=1e-9)  # in vLLM's (10, 25] ms bucket
    assert obs.mean_latency_ms == pytest.approx(20.0, rel=1e-9)


def _filtered_prom(filtered: Filtered) -> MiniPrometheus:
    return _scraped(filtered, lambda step: filtered.pod.observe_itl(0.02, 30))


def test_gauges_without_a_decode_histogram_read_as_no_tokens() -> None:
    pod = _fine_pod()
    obs = _observe(_filtered_prom(Filtered(pod, drop=("vllm:inter_token_latency", "vllm:time_per_output"))), "vllm")
    assert (obs.error, obs.samples, obs.latency_ms, obs.below_resolution, obs.buckets) == (None, 0.0, None, False, ())
    assert (obs.running, obs.waiting) == (1.0, 0.0)


@pytest.mark.parametrize("gauge", ["vllm:num_requests_running", "vllm:num_requests_waiting"])
def test_either_gauge_missing_is_an_error(gauge: str) -> None:
    obs = _observe(_filtered_prom(Filtered(_fine_pod(), drop=(gauge,))), "vllm", window_s=60)
    assert obs.error == "no running/waiting series for ns/d in Prometheus (no vllm pod scraped?)"


def test_the_engine_version_picks_the_queries() -> None:
    """vLLM before 0.13 named the KV-cache gauge gpu_cache_usage_perc: only its version's query reads it."""
    old = Filtered(_fine_pod(), renamed=(("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),))
    prom = _filtered_prom(old)
    source = PrometheusMetrics("mini", runner=prom.runner(60), clock=lambda: NOW)
    assert source.observe("ns", "d", "vllm", "0.11.0").kv_usage == pytest.approx(0.1)
    assert source.observe("ns", "d", "vllm").kv_usage is None


def test_a_series_without_an_le_label_is_not_a_bucket() -> None:
    prom, _ = fleet("vllm")

    def runner(expr: str) -> list[dict[str, object]]:
        rows = prom.query(expr, 60)
        if expr.startswith("(sum by (le)"):  # the decode histogram's buckets
            rows = [*rows, {"metric": {}, "value": [60, "3"]}, {"metric": {"le": "0.5"}, "value": [60, "NaN"]}]
        return rows

    obs = PrometheusMetrics("mini", runner=runner, clock=lambda: NOW).observe("ns", "d", "vllm", window_s=60)
    assert obs.buckets == _observe(prom, "vllm", window_s=60).buckets


def test_the_defaults_window_120_s_and_timeout_5_s() -> None:
    pod = _fine_pod()

    def traffic(step: int) -> None:  # 240 s of 40 tokens every 15 s, then 60 s without
        if step <= 16:
            pod.observe_itl(0.02, 40)

    prom = _scraped(pod, traffic, scrapes=21)
    observed = PrometheusMetrics("mini", runner=prom.runner(300), clock=lambda: NOW).observe("ns", "d", "vllm")
    # over (180, 300]: the scrapes at 195 ... 240 counted 40 each, extrapolated over the window by Prometheus' rule
    expected = prom.query('sum(increase(vllm:inter_token_latency_seconds_bucket{le="+Inf"}[120s]))', 300)
    assert observed.samples == pytest.approx(float(expected[0]["value"][1]), rel=1e-9)
    assert observed.samples != pytest.approx(
        float(prom.query('sum(increase(vllm:inter_token_latency_seconds_bucket{le="+Inf"}[121s]))', 300)[0]["value"][1])
    )
    assert PrometheusMetrics("http://127.0.0.1:1").timeout_s == 5.0


def test_a_prometheus_that_does_not_answer_in_time_is_a_timeout() -> None:
    def slow(path: str) -> Answer:
        time.sleep(2.0)
        return Answer(200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}))

    with canary(slow) as server:
        started = time.monotonic()
        obs = PrometheusMetrics(server.url, timeout_s=0.3, clock=lambda: NOW).observe("ns", "d", "vllm")
        took = time.monotonic() - started
    assert obs.error == f"prometheus {server.url}: TimedOut: timed out"
    assert took < 1.9  # the answer was not awaited (one retry of 0.3 s at most)


def test_a_dropped_connection_is_retried_once() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def hang_up() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            connection.recv(65536)
            connection.close()  # no answer at all

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        obs = PrometheusMetrics(url, timeout_s=2, clock=lambda: NOW).observe("ns", "d", "vllm")
    finally:
        listener.close()
    assert obs.error is not None and obs.error.startswith(f"prometheus {url}: ")
    assert len(accepted) == 2  # the first query, tried twice; nothing after the failure
