"""The replay's MiniPrometheus against the real Prometheus on the same scrapes: production queries agree."""

from __future__ import annotations

import math
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from llmop.engines import queries  # noqa: E402
from llmop.engines.promql import render, selector  # noqa: E402
from llmop_dev.replay.exporter import TgiPodMetrics, VllmPodMetrics, render_text  # noqa: E402
from llmop_dev.replay.prometheus import MiniPrometheus  # noqa: E402
from llmop_dev.replay.types import ScrapeTarget  # noqa: E402
from support.prometheus import Prometheus, find_prometheus  # noqa: E402

pytestmark = pytest.mark.e2e
SampleList = list[tuple[str, dict[str, str], float]]
DEPLOYMENTS = {"vllm": "v", "tgi": "t"}
EXTRA = [  # what the HPA/KEDA baselines ask
    'sum by (pod) (rate(vllm:generation_tokens_total{namespace="bench"}[10s]))',
    'sum by (pod) (vllm:num_requests_running{namespace="bench"})',
    'avg(vllm:num_requests_waiting{namespace="bench"})',
    'sum(rate(tgi_request_success{namespace="bench"}[10s]))',
    'sum by (pod) (increase(vllm:inter_token_latency_seconds_count{namespace="bench"}[7s]))',
]


class Frozen:
    """The samples one pod served at one scrape."""

    def __init__(self, samples: SampleList) -> None:
        self._samples = samples

    def samples(self) -> SampleList:
        return self._samples


class Fleet:
    """Four pods whose counters advance in a thread; /metrics serves them all with their target labels."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rng = random.Random(11)
        self.pods: dict[str, ScrapeTarget] = {}
        for engine, deployment in DEPLOYMENTS.items():
            for index in range(2):
                name = f"{deployment}{index}"
                metrics = VllmPodMetrics(model_name="m") if engine == "vllm" else TgiPodMetrics()
                labels = {"namespace": "bench", "llmdeployment": deployment, "pod": name}
                self.pods[name] = ScrapeTarget(labels, metrics)
        self.served: list[tuple[float, dict[str, SampleList]]] = []
        self.stop = threading.Event()

    def drive(self) -> None:
        while not self.stop.wait(0.1):
            with self.lock:
                for target in self.pods.values():
                    m, rng = target.metrics, self.rng
                    m.observe_itl(rng.uniform(0.005, 0.2), rng.randint(5, 40))
                    m.observe_ttft(rng.uniform(0.01, 2.0))
                    for _ in range(rng.randint(1, 4)):
                        m.observe_step("decode", rng.uniform(0.01, 0.08), rng.randint(1, 16))
                    if rng.random() < 0.3:
                        m.observe_step("prefill", rng.uniform(0.05, 0.5), rng.randint(1, 16))
                    if rng.random() < 0.5:
                        m.observe_finished(rng.randint(10, 2000), rng.randint(2, 500), rng.uniform(0.5, 30), 0.3)
                    m.set_state(rng.randint(0, 16), rng.randint(0, 8), rng.random())

    def text(self) -> str:
        with self.lock:
            snapshot = {name: target.metrics.samples() for name, target in self.pods.items()}
            self.served.append((time.time(), snapshot))
        merged = [
            (name, {**labels, **self.pods[pod].labels}, value)
            for pod, samples in snapshot.items()
            for name, labels, value in samples
        ]
        return render_text(merged)


def _serve(fleet: Fleet) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = fleet.text().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _real(url: str, expr: str, at: float) -> list[dict[str, Any]]:
    payload = requests.get(f"{url}/api/v1/query", params={"query": expr, "time": f"{at:.3f}"}, timeout=10).json()
    assert payload["status"] == "success", (expr, payload)
    return list(payload["data"]["result"])


def _by_labels(rows: list[dict[str, Any]]) -> dict[frozenset[tuple[str, str]], float]:
    return {frozenset(row["metric"].items()): float(row["value"][1]) for row in rows}


def test_production_queries_agree_with_real_prometheus(tmp_path: Path) -> None:
    if find_prometheus() is None:
        if os.environ.get("REQUIRE_K8S") == "1":
            pytest.fail("REQUIRE_K8S=1 but prometheus is not installed", pytrace=False)
        pytest.skip("prometheus is not installed")
    fleet = Fleet()
    server = _serve(fleet)
    driver = threading.Thread(target=fleet.drive, daemon=True)
    driver.start()
    port = server.server_address[1]
    prometheus = Prometheus(tmp_path / "prometheus", [f"127.0.0.1:{port}"], scrape_interval_s=1.0).start()
    try:
        time.sleep(14)
        with fleet.lock:
            del fleet.pods["v1"]  # a pod goes away: both must mark its series stale
        time.sleep(8)
        fleet.stop.set()
        time.sleep(1.5)
        rows = _real(prometheus.url, 'vllm:num_requests_running{pod="v0"}[60s]', time.time())
        scrape_times = [float(t) for t, _ in rows[0]["values"]]
        mini = MiniPrometheus(scrape_interval_s=1.0)
        served = list(fleet.served)
        for scraped_at in scrape_times:  # the real timestamps, with what we served at that scrape
            served_at, snapshot = min(served, key=lambda item: abs(item[0] - scraped_at))
            assert abs(served_at - scraped_at) < 0.3, (served_at, scraped_at)
            targets = [
                ScrapeTarget({"namespace": "bench", "llmdeployment": name[0], "pod": name}, Frozen(samples))
                for name, samples in snapshot.items()
            ]
            mini.scrape(scraped_at, targets)
        assert len(scrape_times) >= 15
        at = round(scrape_times[-1] + 0.5, 3)
        removed = next(t for t in scrape_times if "v1" not in min(served, key=lambda item: abs(item[0] - t))[1])
        # early (extrapolation to the range start, zero point), after the removal (v1's series end 2-3 s before
        # the range end: half-interval extrapolation; its gauges stale), mid-run, and at the end
        times = [scrape_times[2] + 0.5, removed + 2.3, scrape_times[-8] + 0.25, at]
        exprs = [
            render(item.template, selector("bench", deployment), window_s=10, quantile=0.95, rate_window_s=10)
            for engine, deployment in DEPLOYMENTS.items()
            for item in queries(engine)
        ]
        compared = 0
        for expr in [*exprs, *EXTRA, 'sum(vllm:num_requests_running{namespace="bench"})']:
            for when in (round(when, 3) for when in times):
                real, ours = _by_labels(_real(prometheus.url, expr, when)), _by_labels(mini.query(expr, when))
                assert real.keys() == ours.keys(), (expr, real, ours)
                assert real, expr
                for key, value in real.items():
                    if math.isnan(value):
                        assert math.isnan(ours[key]), (expr, key)
                    else:
                        assert ours[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (expr, key, value, ours[key])
                    compared += 1
        assert compared > 120
        gone = 'vllm:num_requests_running{pod="v1"}'
        assert _real(prometheus.url, gone, at) == [] and mini.query(gone, at) == []
    finally:
        prometheus.stop()
        fleet.stop.set()
        server.shutdown()
        server.server_close()
