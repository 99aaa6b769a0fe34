"""Per-pod metric recorders in vLLM 0.33's and TGI 3.3.7's own families, labels, buckets and `le` spelling."""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from llmop.engines.tgi import DURATION_BUCKETS_S as TGI_DURATION_BUCKETS_S

SampleTuple = tuple[str, dict[str, str], float]

# vllm/v1/metrics/buckets.py (0.33) defaults, copied from vLLM's source rather than taken from llmop (the thing
# judged): inter_token_latency and time_to_first_token families.
VLLM_ITL_BUCKETS_S: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
VLLM_TTFT_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
    160.0, 640.0, 2560.0,
)  # fmt: skip


def vllm_buckets_from_args(args: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """The histogram families an argv overrides, read as vLLM 0.33 reads `--custom-histogram-buckets` (a JSON
    object from family to upper bounds; the last occurrence wins, `--flag=value` or `--flag value`)."""
    value: str | None = None
    for index, arg in enumerate(args):
        if arg == "--custom-histogram-buckets" and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith("--custom-histogram-buckets="):
            value = arg.split("=", 1)[1]
    if value is None:
        return {}
    return {family: tuple(float(edge) for edge in edges) for family, edges in json.loads(value).items()}


# vllm/v1/metrics/buckets.py (0.33): request_latency family (e2e, queue, inference, prefill, decode).
VLLM_REQUEST_LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0,
    1920.0, 7680.0,
)  # fmt: skip
VLLM_FINISH_REASONS = ("stop", "length", "abort", "error", "repetition")  # v1 FinishReason, str() of each


def build_1_2_5_buckets(max_value: int) -> tuple[float, ...]:
    """vLLM's request_tokens family: 1, 2, 5, 10, 20, 50, ... up to max_model_len."""
    edges: list[float] = []
    exponent = 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > max_value:
                return tuple(float(edge) for edge in edges)
            edges.append(value)
        exponent += 1


def _special(value: float) -> str | None:
    """NaN and the infinities as both exposition formats write them."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return None


def go_float(value: float) -> str:
    """prometheus_client's floatToGoString (vLLM's `le` strings and sample values)."""
    value = float(value)
    special = _special(value)
    if special is not None:
        return special
    text = repr(value)
    dot = text.find(".")
    if value > 0 and dot > 6:
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def rust_float(value: float) -> str:
    """Rust's `Display` for f64 (metrics-exporter-prometheus: TGI's `le` strings and gauges): 1 not 1.0, no exponent."""
    value = float(value)
    special = _special(value)
    if special is not None:
        return special
    text = repr(value)
    if "e" in text:
        text = format(Decimal(text), "f")
    return text[:-2] if text.endswith(".0") else text


class Histogram:
    """Cumulative-on-read histogram; `observe(value, n)` adds n observations with one bisect."""

    __slots__ = ("count", "counts", "edges", "le", "sum")

    def __init__(self, edges: Sequence[float], style: str = "go") -> None:
        self.edges = tuple(sorted(float(edge) for edge in edges))
        spell = go_float if style == "go" else rust_float
        self.le = [spell(edge) for edge in self.edges] + ["+Inf"]
        self.counts = [0.0] * (len(self.edges) + 1)
        self.sum = 0.0
        self.count = 0.0

    def observe(self, value: float, n: float = 1.0) -> None:
        self.counts[bisect_left(self.edges, value)] += n  # le is inclusive: value <= edge
        self.sum += value * n
        self.count += n

    def samples(self, name: str, labels: dict[str, str]) -> list[SampleTuple]:
        out: list[SampleTuple] = []
        running = 0.0
        for le, count in zip(self.le, self.counts, strict=True):
            running += count
            out.append((f"{name}_bucket", {**labels, "le": le}, running))
        out.append((f"{name}_sum", dict(labels), self.sum))
        out.append((f"{name}_count", dict(labels), self.count))
        return out


class GatewayCounter:
    """The gateway in front of the pods: requests it routed to one pod (an ingress's per-upstream counter, like
    Istio's istio_requests_total or Envoy's upstream_rq_total). Arrivals, not completions: a rate on it does not
    saturate at what an overloaded pod finishes. Not an engine metric; scraped as its own target."""

    name = "gateway_requests_total"

    def __init__(self) -> None:
        self.requests = 0.0

    def observe_arrival(self) -> None:
        self.requests += 1

    def samples(self) -> list[SampleTuple]:
        return [(self.name, {}, self.requests)]


class VllmPodMetrics:
    """What one vLLM 0.33 pod exports (single engine, `engine="0"`); every family exists from start-up."""

    def __init__(
        self,
        model_name: str = "model",
        itl_buckets: Sequence[float] = VLLM_ITL_BUCKETS_S,
        ttft_buckets: Sequence[float] = VLLM_TTFT_BUCKETS_S,
        max_model_len: int = 8192,
        finished_reason: str = "length",
    ) -> None:
        self.labels = {"model_name": model_name, "engine": "0"}
        self.finished_reason = finished_reason
        self.itl = Histogram(itl_buckets)
        self.ttft = Histogram(ttft_buckets)
        self.e2e = Histogram(VLLM_REQUEST_LATENCY_BUCKETS_S)
        self.queue = Histogram(VLLM_REQUEST_LATENCY_BUCKETS_S)
        # request_time_per_output_token uses the inter_token_latency family (--custom-histogram-buckets too)
        self.tpot = Histogram(itl_buckets)
        self.prompt = Histogram(build_1_2_5_buckets(max_model_len))
        self.generation = Histogram(build_1_2_5_buckets(max_model_len))
        self.prompt_total = 0.0
        self.generation_total = 0.0
        self.success = dict.fromkeys(VLLM_FINISH_REASONS, 0.0)
        self.running = 0.0
        self.waiting = 0.0
        self.kv_usage = 0.0

    @classmethod
    def for_argv(cls, args: Sequence[str], model_name: str = "model", max_model_len: int = 8192) -> VllmPodMetrics:
        """A pod that runs `args`: the ITL and TTFT buckets its `--custom-histogram-buckets` names, else vLLM's."""
        custom = vllm_buckets_from_args(args)
        return cls(
            model_name=model_name,
            itl_buckets=custom.get("inter_token_latency", VLLM_ITL_BUCKETS_S),
            ttft_buckets=custom.get("time_to_first_token", VLLM_TTFT_BUCKETS_S),
            max_model_len=max_model_len,
        )

    def observe_itl(self, value_s: float, count: float) -> None:
        self.itl.observe(value_s, count)
        self.generation_total += count

    def observe_ttft(self, value_s: float) -> None:
        self.ttft.observe(value_s)
        self.generation_total += 1  # the first token

    def observe_step(self, kind: str, duration_s: float, batch: int, count: int = 1) -> None:
        """vLLM exports no per-step duration histogram."""

    def observe_finished(
        self, prompt_tokens: int, output_tokens: int, e2e_s: float, queue_s: float, ttft_s: float | None = None
    ) -> None:
        """`ttft_s` (arrival to first token) gives the decode time for request_time_per_output_token; without it
        the time after the queue is used. prompt_tokens_total is counted here (vLLM counts it at prefill)."""
        self.success[self.finished_reason] = self.success.get(self.finished_reason, 0.0) + 1
        self.e2e.observe(e2e_s)
        self.queue.observe(queue_s)
        self.prompt.observe(float(prompt_tokens))
        self.generation.observe(float(output_tokens))
        self.prompt_total += prompt_tokens
        if output_tokens > 1:
            decode_s = e2e_s - (ttft_s if ttft_s is not None else queue_s)
            self.tpot.observe(max(decode_s, 0.0) / (output_tokens - 1))

    def set_state(self, running: int, waiting: int, kv_usage: float) -> None:
        self.running, self.waiting, self.kv_usage = float(running), float(waiting), float(kv_usage)

    def samples(self) -> list[SampleTuple]:
        labels = self.labels
        out: list[SampleTuple] = [
            ("vllm:num_requests_running", dict(labels), self.running),
            ("vllm:num_requests_waiting", dict(labels), self.waiting),
            ("vllm:kv_cache_usage_perc", dict(labels), self.kv_usage),
            ("vllm:prompt_tokens_total", dict(labels), self.prompt_total),
            ("vllm:generation_tokens_total", dict(labels), self.generation_total),
        ]
        for reason, count in self.success.items():
            out.append(("vllm:request_success_total", {**labels, "finished_reason": reason}, count))
        out += self.prompt.samples("vllm:request_prompt_tokens", labels)
        out += self.generation.samples("vllm:request_generation_tokens", labels)
        out += self.ttft.samples("vllm:time_to_first_token_seconds", labels)
        out += self.itl.samples("vllm:inter_token_latency_seconds", labels)
        out += self.e2e.samples("vllm:e2e_request_latency_seconds", labels)
        out += self.queue.samples("vllm:request_queue_time_seconds", labels)
        out += self.tpot.samples("vllm:request_time_per_output_token_seconds", labels)
        return out


class TgiPodMetrics:
    """What one TGI 3.3.7 router exports: no labels but `method`; a family appears at its first update."""

    def __init__(self, max_input_tokens: int = 4095, max_total_tokens: int = 4096) -> None:
        self._steps: dict[str, Histogram] = {}
        self._hist: dict[str, Histogram] = {}
        self._counters: dict[tuple[str, str], float] = {}  # (name, method) -> count
        self._edges = {
            "tgi_request_input_length": [max_input_tokens / 100.0 * (x + 1) for x in range(100)],
            "tgi_request_generated_tokens": [max_total_tokens / 100.0 * (x + 1) for x in range(100)],
        }
        self.queue_size: float | None = None  # absent until the first request is queued
        self.batch_size: float | None = None  # absent until the first batch

    def _observe(self, name: str, value: float) -> None:
        histogram = self._hist.get(name)
        if histogram is None:
            histogram = self._hist[name] = Histogram(self._edges.get(name, TGI_DURATION_BUCKETS_S), style="rust")
        histogram.observe(value)

    def _count(self, name: str, method: str = "", count: int = 1) -> None:
        self._counters[(name, method)] = self._counters.get((name, method), 0.0) + count

    def observe_itl(self, value_s: float, count: float) -> None:
        """TGI has no per-token histogram."""

    def observe_ttft(self, value_s: float) -> None:
        """TGI has no time-to-first-token histogram."""

    def observe_step(self, kind: str, duration_s: float, batch: int, count: int = 1) -> None:
        if kind not in ("prefill", "decode"):
            raise ValueError(f"step kind must be prefill or decode, got {kind!r}")
        histogram = self._steps.get(kind)
        if histogram is None:
            histogram = self._steps[kind] = Histogram(TGI_DURATION_BUCKETS_S, style="rust")
        histogram.observe(duration_s, count)  # one sample per step, whatever the batch
        self._count("tgi_batch_inference_count", kind, count)
        self._count("tgi_batch_inference_success", kind, count)
        if self.batch_size is None:
            self.batch_size = float(batch)
        if self.queue_size is None:
            self.queue_size = 0.0

    def observe_finished(
        self, prompt_tokens: int, output_tokens: int, e2e_s: float, queue_s: float, ttft_s: float | None = None
    ) -> None:
        """server.rs records these at completion (input_length and request_count really at arrival)."""
        self._count("tgi_request_count")
        self._count("tgi_request_success")
        inference_s = max(e2e_s - queue_s, 0.0)
        self._observe("tgi_request_input_length", float(prompt_tokens))
        self._observe("tgi_request_duration", e2e_s)
        self._observe("tgi_request_queue_duration", queue_s)
        self._observe("tgi_request_inference_duration", inference_s)
        self._observe("tgi_request_mean_time_per_token_duration", inference_s / max(output_tokens, 1))
        self._observe("tgi_request_generated_tokens", float(output_tokens))
        if self.queue_size is None:
            self.queue_size = 0.0

    def set_state(self, running: int, waiting: int, kv_usage: float) -> None:
        if waiting > 0 or running > 0 or self.queue_size is not None:
            self.queue_size = float(waiting)
        if running > 0 or self.batch_size is not None:
            self.batch_size = float(running)

    def samples(self) -> list[SampleTuple]:
        out: list[SampleTuple] = []
        if self.queue_size is not None:
            out.append(("tgi_queue_size", {}, self.queue_size))
        if self.batch_size is not None:
            out.append(("tgi_batch_current_size", {}, self.batch_size))
        for (name, method), value in self._counters.items():
            out.append((name, {"method": method} if method else {}, value))
        for kind, histogram in self._steps.items():
            out += histogram.samples("tgi_batch_inference_duration", {"method": kind})
        for name, histogram in self._hist.items():
            out += histogram.samples(name, {})
        return out


_VLLM_COUNTERS = {"vllm:prompt_tokens", "vllm:generation_tokens", "vllm:request_success"}
_TGI_COUNTERS = {
    "tgi_request_count", "tgi_request_success", "tgi_batch_inference_count", "tgi_batch_inference_success"
}  # fmt: skip


def _family(name: str) -> tuple[str, str]:
    """(family, type) of a sample name, for the # TYPE lines."""
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if base != name and (base.endswith(("_seconds", "_duration", "_tokens", "_length"))):
            return base, "histogram"
    if name.endswith("_total") and name.removesuffix("_total") in _VLLM_COUNTERS:
        return name.removesuffix("_total"), "counter"
    if name in _TGI_COUNTERS:
        return name, "counter"
    return name, "gauge"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"


def wants_openmetrics(accept: str | None) -> bool:
    """Whether prometheus_client 0.26 (vLLM's exporter) answers this Accept header with OpenMetrics and escaped
    names: it does for any OpenMetrics offer without `escaping=allow-utf-8` (Prometheus 2.x's default header)."""
    accept = accept or ""
    return "application/openmetrics-text" in accept and "escaping=allow-utf-8" not in accept


def render_openmetrics(samples: Iterable[SampleTuple]) -> str:
    """OpenMetrics 1.0.0 as prometheus_client 0.26 writes it with `escaping=underscores`: # TYPE lines keep the
    family's name, every sample name has `:` escaped to `_`, `# EOF` ends it (no `_created` samples here).
    Counters without `_total` (TGI's, which never serves OpenMetrics itself) are declared `unknown`."""
    families: dict[str, tuple[str, list[str]]] = {}
    for name, labels, value in samples:
        family, kind = _family(name)
        if kind == "counter" and not name.endswith("_total"):
            kind = "unknown"
        families.setdefault(family, (kind, []))[1].append(_line(name.replace(":", "_"), labels, value))
    out: list[str] = []
    for family, (kind, lines) in families.items():
        out.append(f"# TYPE {family} {kind}")
        out.extend(lines)
    return "\n".join([*out, "# EOF"]) + "\n"


def _line(name: str, labels: Mapping[str, str], value: float) -> str:
    text = ",".join(f'{key}="{_escape(item)}"' for key, item in labels.items())
    return f"{name}{{{text}}} {go_float(value)}" if text else f"{name} {go_float(value)}"


def render_text(samples: Iterable[SampleTuple]) -> str:
    """Prometheus text format 0.0.4 (samples grouped per family, one # TYPE line each)."""
    families: dict[str, tuple[str, list[str]]] = {}
    for name, labels, value in samples:
        family, kind = _family(name)
        families.setdefault(family, (kind, []))[1].append(_line(name, labels, value))
    out: list[str] = []
    for family, (kind, lines) in families.items():
        out.append(f"# TYPE {family} {kind}")
        out.extend(lines)
    return "\n".join(out) + "\n"
