"""Two engine pods with known traffic, scraped by the replay's emulated Prometheus, and what every query reads."""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass

from llmop.engines.tgi import DURATION_BUCKETS_S as TGI_DURATION_BUCKETS_S
from llmop_dev.replay.exporter import TgiPodMetrics, VllmPodMetrics
from llmop_dev.replay.prometheus import MiniPrometheus
from llmop_dev.replay.types import ScrapeTarget


def scrape_target(pod: str, metrics: object, deployment: str = "d") -> ScrapeTarget:
    """Pod `pod` of LLMDeployment ns/`deployment` as a scrape target."""
    return ScrapeTarget({"namespace": "ns", "llmdeployment": deployment, "pod": pod}, metrics)  # type: ignore[arg-type]


@dataclass
class Escaped:
    """A vLLM pod as a Prometheus 2.x stores it after negotiating OpenMetrics: `:` escaped to `_` in every name."""

    pod: VllmPodMetrics

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        return [(name.replace(":", "_"), labels, value) for name, labels, value in self.pod.samples()]


def fleet(engine: str, escaped: bool = False) -> tuple[MiniPrometheus, list[ScrapeTarget]]:
    """Two fresh pods scraped at 0, 15, 30, 45, 60 s; the same traffic in each 15 s interval."""
    pods = [VllmPodMetrics(model_name="m") if engine == "vllm" else TgiPodMetrics() for _ in range(2)]
    exported = [Escaped(pod) if escaped else pod for pod in pods]  # type: ignore[arg-type]
    targets = [scrape_target(f"p{i}", pod) for i, pod in enumerate(exported)]
    prom = MiniPrometheus()
    prom.scrape(0, targets)
    for step in range(1, 5):
        for index, pod in enumerate(pods):
            pod.observe_itl(0.03, 100)
            pod.observe_itl(0.09, 20)
            for _ in range(2):
                pod.observe_ttft(0.3)
            for _ in range(10):
                pod.observe_step("decode", 0.02, 8)
            pod.observe_step("prefill", 0.1, 8)
            for _ in range(2):
                pod.observe_finished(400, 121, 3.0, 0.4, 0.5)
            pod.set_state(5 + index, step if index == 0 else 2, 0.5 + 0.2 * index)
        prom.scrape(15 * step, targets)
    return prom, targets


def tgi_quantile(value: float, q: float) -> float:
    """All observations equal: the quantile interpolates linearly inside their bucket."""
    index = bisect_left(TGI_DURATION_BUCKETS_S, value)
    start = TGI_DURATION_BUCKETS_S[index - 1]
    return start + (TGI_DURATION_BUCKETS_S[index] - start) * q


EXPECTED = {  # per pod and interval as in _fleet; every counter is extrapolated to exactly 4 intervals / 60 s
    "vllm": {
        "decode_latency_quantile": 0.075 + 0.025 * (0.95 * 16 - 13.333333333333334) / (16 - 13.333333333333334),
        "decode_latency_mean": (0.03 * 100 + 0.09 * 20) / 120,
        "decode_samples": 2 * 4 * 120,
        "running": 11,
        "waiting": 6,
        "waiting_growth": 1 / 15 + 60 / 2250,  # pod 1 went 0 (t=0), 2, 2, 2, 2
        "kv_usage": 0.7,
        "ttft_quantile": 0.25 + 0.25 * 0.95,
        "request_rate": 2 * 2 / 15,
        "mean_prompt_tokens": 400,
        "mean_output_tokens": 121,
    },
    "tgi": {
        # 10 decode steps of 20 ms and one prefill step of 100 ms: the p95 is 45 % into the prefill step's bucket
        "decode_latency_quantile": tgi_quantile(0.1, 0.95 * 11 - 10),
        "decode_latency_mean": (10 * 0.02 + 0.1) / 11,
        "decode_samples": 2 * 4 * 11,
        "running": 11,
        "waiting": 6,
        "waiting_growth": 1 / 15,  # pod 1's queue gauge appeared at 15 s with 2 and stayed
        # queue 0.4 s and prefill 0.1 s on average, plus the root-sum-square of their p95s above those means
        "ttft_quantile": 0.4 + 0.1 + math.hypot(tgi_quantile(0.4, 0.95) - 0.4, tgi_quantile(0.1, 0.95) - 0.1),
        "request_rate": 2 * 2 / 15,
        "mean_prompt_tokens": 400,
        "mean_output_tokens": 121,
    },
}
