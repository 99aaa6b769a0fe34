"""The metrics source: one Observation per LLMDeployment from Prometheus; never raises, reports errors instead."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmop.autoscale.http_errors import describe
from llmop.autoscale.prom_http import PrometheusClientSettings, client_kwargs
from llmop.engines import adapter, queries
from llmop.engines.promql import Query, render, selector

# Quantiles that land in the first bucket are only known to be <= its upper edge (vLLM: 10 ms).
COARSE_FIRST_BUCKET_S = 0.001


def ms_text(value: float) -> str:
    """A latency as the reasons write it: `61 ms`, `8.5 ms`."""
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


@dataclass(frozen=True)
class Observation:
    """What Prometheus says about one LLMDeployment over the SLO window; `error` set means: do not act on it."""

    latency_ms: float | None  # p-quantile of decode latency; None without (enough) traffic
    samples: float  # tokens (vLLM) or decode steps (TGI) observed in the window
    running: float | None
    waiting: float | None
    kv_usage: float | None
    observed_at: float
    error: str | None = None
    below_resolution: bool = False  # the quantile fell in the first bucket: latency_ms is an upper bound
    percentile: float = 95.0
    ttft_ms: float | None = None
    mean_latency_ms: float | None = None  # mean decode latency over the window (histogram sum / count)
    request_rate: float | None = None
    mean_prompt_tokens: float | None = None
    mean_output_tokens: float | None = None
    waiting_growth_rps: float | None = None  # d(waiting)/dt over the rate window
    source: str = "prometheus"  # or "probe": latency_ms is an active probe's mean TPOT (see autoscale/fallback.py)
    note: str = ""  # how the latency was measured, for status messages (the probe's endpoint and tokens)
    extra: dict[str, float] = field(default_factory=dict)
    buckets: tuple[tuple[float, float], ...] = ()  # the decode histogram's (upper bound s, cumulative rate) pairs

    def share_above(self, edge_s: float) -> float | None:
        """Share of decode observations above the bucket edge `edge_s` (None without that edge or any data)."""
        total = max((count for bound, count in self.buckets if math.isinf(bound)), default=0.0)
        below = [count for bound, count in self.buckets if abs(bound - edge_s) <= 1e-9 * max(edge_s, 1e-9)]
        if total <= 0 or not below:
            return None
        return max(0.0, 1.0 - below[0] / total)

    @property
    def ok(self) -> bool:
        return self.error is None

    def latency_text(self) -> str:
        """`61 ms`, `<= 10 ms` or `n/a`."""
        if self.latency_ms is None:
            return "n/a"
        return ("<= " if self.below_resolution else "") + ms_text(self.latency_ms)

    @classmethod
    def failed(cls, error: str, observed_at: float, percentile: float = 95.0) -> Observation:
        return cls(None, 0.0, None, None, None, observed_at, error=error, percentile=percentile)


class MetricsSource(Protocol):
    """Anything that can observe a deployment (Prometheus here; the simulator's replay in benchmarks)."""

    def observe(
        self,
        namespace: str,
        name: str,
        engine: str,
        engine_version: str | None,
        percentile: float,
        window_s: float,
        ttft_percentile: float | None = None,
    ) -> Observation: ...


def bucket_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile over (upper bound, cumulative count) pairs; NaN without observations."""
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return math.nan
    counts: list[float] = []
    for _, count in ordered:  # ensure monotonic, as Prometheus does
        counts.append(max(count, counts[-1]) if counts else count)
    total = counts[-1]
    if total <= 0:
        return math.nan
    rank = q * total
    index = next(i for i, count in enumerate(counts) if count >= rank or i == len(counts) - 1)
    if index == len(ordered) - 1:
        return ordered[-2][0]
    if index == 0 and ordered[0][0] <= 0:
        return ordered[0][0]
    start, end, count = 0.0, ordered[index][0], counts[index]
    if index > 0:
        start = ordered[index - 1][0]
        count -= counts[index - 1]
        rank -= counts[index - 1]
    return start + (end - start) * (rank / count) if count > 0 else end


def resolve_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> tuple[float, bool]:
    """(quantile in seconds, below_resolution): a quantile in a coarse first bucket is reported as its upper edge."""
    value = bucket_quantile(q, buckets)
    finite = sorted(bound for bound, _ in buckets if not math.isinf(bound))
    if not math.isnan(value) and finite and finite[0] > COARSE_FIRST_BUCKET_S and value <= finite[0]:
        return finite[0], True
    return value, False


class QueryFailed(Exception):
    """Prometheus answered with an error, or not at all."""


Runner = Callable[[str], list[dict[str, Any]]]


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _scalar(result: list[dict[str, Any]]) -> float | None:
    """Single-series value; None when empty or NaN."""
    if not result:
        return None
    value = _number(result[0].get("value", [0, "NaN"])[1])
    return None if math.isnan(value) or math.isinf(value) else value


def _has_data(bucket_rows: list[dict[str, Any]], run: Runner) -> bool:
    """Whether the decode histogram or the finished-request counter has any series in the window."""
    return bool(bucket_rows) or bool(run("request_rate"))


class PrometheusMetrics:
    """Reads one Observation per deployment through prometheus-api-client's `custom_query`."""

    def __init__(
        self,
        url: str,
        timeout_s: float = 5.0,
        runner: Runner | None = None,
        clock: Callable[[], float] = time.time,
        client: PrometheusClientSettings | None = None,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._runner = runner
        self._clock = clock  # the benchmark's replay passes its simulated time
        self._settings = client or PrometheusClientSettings()  # TLS verified, no credentials, by default
        self._client: Any = None

    def _run(self, expr: str) -> list[dict[str, Any]]:
        if self._runner is not None:
            return self._runner(expr)
        try:  # a failure is reported by its kind only: the answer's body never reaches status or Events
            if self._client is None:
                from prometheus_api_client import PrometheusConnect
                from urllib3.util.retry import Retry

                self._client = PrometheusConnect(
                    self.url,
                    retry=Retry(total=1, backoff_factor=0.1),
                    timeout=self.timeout_s,
                    **client_kwargs(self._settings, self.url),
                )
            result = self._client.custom_query(expr)
        except Exception as error:
            raise describe(error) from error
        if not isinstance(result, list):
            raise QueryFailed(f"unexpected answer {type(result).__name__}")
        return result

    def observe(
        self,
        namespace: str,
        name: str,
        engine: str,
        engine_version: str | None = None,
        percentile: float = 95.0,
        window_s: float = 120.0,
        ttft_percentile: float | None = None,
    ) -> Observation:
        now = self._clock()
        try:
            return self._observe(namespace, name, engine, engine_version, percentile, window_s, now, ttft_percentile)
        except Exception as error:  # fail-static: the policy holds on any failure
            text = str(error).splitlines()[0] if str(error) else type(error).__name__
            return Observation.failed(f"prometheus {self.url}: {type(error).__name__}: {text[:300]}", now, percentile)

    def _observe(
        self,
        namespace: str,
        name: str,
        engine: str,
        engine_version: str | None,
        percentile: float,
        window_s: float,
        now: float,
        ttft_percentile: float | None = None,
    ) -> Observation:
        by_name: dict[str, Query] = {item.name: item for item in queries(engine, engine_version)}
        sel = selector(namespace, name)

        def run(query_name: str) -> list[dict[str, Any]]:
            return self._run(render(by_name[query_name].template, sel, window_s, percentile / 100))

        bucket_rows = run("decode_latency_buckets")
        running = _scalar(run("running"))
        waiting = _scalar(run("waiting"))
        if (
            adapter(engine).gauges_need_traffic
            and running is None
            and waiting is None
            and not _has_data(bucket_rows, run)
        ):
            # TGI's router creates tgi_queue_size / tgi_batch_current_size at its first request: an idle pod that
            # never served has neither, nor any request histogram. Nothing at all in the window reads as no traffic
            # (the probe fallback can then measure it); a histogram without gauges is still missing data.
            return Observation(None, 0.0, 0.0, 0.0, None, now, percentile=percentile)
        if running is None or waiting is None:
            return Observation.failed(
                f"no running/waiting series for {namespace}/{name} in Prometheus (no {engine} pod scraped?)",
                now,
                percentile,
            )
        buckets = [(_number(row.get("metric", {}).get("le")), _number(row["value"][1])) for row in bucket_rows]
        buckets = [(bound, count) for bound, count in buckets if not math.isnan(bound) and not math.isnan(count)]
        total_rate = max((count for bound, count in buckets if math.isinf(bound)), default=0.0)
        samples = total_rate * window_s
        latency_s, below = resolve_quantile(percentile / 100, buckets) if samples > 0 else (math.nan, False)

        def optional(query_name: str) -> float | None:
            if query_name not in by_name:
                return None
            return _scalar(run(query_name))

        ttft = None
        if "ttft_quantile" in by_name:  # at the TTFT objective's percentile when there is one
            quantile = (ttft_percentile or percentile) / 100
            ttft = _scalar(self._run(render(by_name["ttft_quantile"].template, sel, window_s, quantile)))
        mean_s = optional("decode_latency_mean") if samples > 0 else None
        return Observation(
            buckets=tuple(sorted(buckets)),
            mean_latency_ms=None if mean_s is None else mean_s * 1000.0,
            latency_ms=None if math.isnan(latency_s) else latency_s * 1000.0,
            samples=samples,
            running=running,
            waiting=waiting,
            kv_usage=optional("kv_usage"),
            observed_at=now,
            below_resolution=below,
            percentile=percentile,
            ttft_ms=None if ttft is None else ttft * 1000.0,
            request_rate=optional("request_rate"),
            mean_prompt_tokens=optional("mean_prompt_tokens"),
            mean_output_tokens=optional("mean_output_tokens"),
            waiting_growth_rps=optional("waiting_growth"),
        )
