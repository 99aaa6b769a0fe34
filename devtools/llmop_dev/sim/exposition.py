"""Prometheus text exposition of simulated pods, in vLLM's and TGI's metric names, types and buckets."""

from __future__ import annotations

import math
from collections.abc import Iterable

from llmop_dev.sim.fleet import DeploymentSim, Histogram, Pod, PodMetrics

Labels = dict[str, str]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Labels) -> str:
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items()) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class Writer:
    """Collects families so each gets one HELP/TYPE header followed by all pods' samples."""

    def __init__(self) -> None:
        self._families: dict[str, tuple[str, str, list[str]]] = {}

    def _family(self, name: str, kind: str, help_text: str) -> list[str]:
        if name not in self._families:
            self._families[name] = (kind, help_text, [])
        return self._families[name][2]

    def gauge(self, name: str, help_text: str, labels: Labels, value: float) -> None:
        self._family(name, "gauge", help_text).append(f"{name}{_labels(labels)} {_number(value)}")

    def counter(self, name: str, help_text: str, labels: Labels, value: float, suffix: str = "_total") -> None:
        """vLLM (prometheus_client) writes `_total`; TGI (metrics-exporter-prometheus) writes the bare name."""
        family = name + suffix  # prometheus_client names a counter family with its `_total` sample name
        self._family(family, "counter", help_text).append(f"{family}{_labels(labels)} {_number(math.floor(value))}")

    def histogram(self, name: str, help_text: str, labels: Labels, histogram: Histogram) -> None:
        lines = self._family(name, "histogram", help_text)
        for bound, count in histogram.cumulative():
            le = "+Inf" if math.isinf(bound) else repr(float(bound))
            lines.append(f"{name}_bucket{_labels({**labels, 'le': le})} {_number(math.floor(count + 1e-9))}")
        lines.append(f"{name}_sum{_labels(labels)} {_number(histogram.sum)}")
        lines.append(f"{name}_count{_labels(labels)} {_number(math.floor(histogram.count + 1e-9))}")

    def text(self) -> str:
        out: list[str] = []
        for name, (kind, help_text, lines) in self._families.items():
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(lines)
        return "\n".join(out) + "\n"


def pod_labels(sim: DeploymentSim, pod: Pod) -> Labels:
    return {
        "namespace": sim.namespace,
        "pod": pod.name,
        "llmdeployment": sim.name,
        "model_name": sim.plan.model_name,
    }


def write_vllm(writer: Writer, labels: Labels, m: PodMetrics) -> None:
    labels = {**labels, "engine": "0"}
    writer.gauge(
        "vllm:num_requests_running", "Number of requests in model execution batches.", labels, round(m.running)
    )
    writer.gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", labels, round(m.waiting))
    writer.gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", labels, m.kv_usage)
    writer.counter("vllm:prompt_tokens", "Number of prefill tokens processed.", labels, m.prompt_total)
    writer.counter("vllm:generation_tokens", "Number of generation tokens processed.", labels, m.generation_total)
    writer.counter(
        "vllm:request_success",
        "Count of successfully processed requests.",
        {**labels, "finished_reason": "length"},
        m.requests,
    )
    writer.histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", labels, m.itl)
    writer.histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", labels, m.ttft)
    writer.histogram(
        "vllm:request_time_per_output_token_seconds",
        "Histogram of time_per_output_token_seconds per request.",
        labels,
        m.request_tpot,
    )
    writer.histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.", labels, m.prompt_tokens)
    writer.histogram(
        "vllm:request_generation_tokens", "Number of generation tokens processed.", labels, m.output_tokens
    )


def write_tgi(writer: Writer, labels: Labels, m: PodMetrics) -> None:
    writer.gauge("tgi_queue_size", "Current queue size", labels, round(m.waiting))
    writer.gauge("tgi_batch_current_size", "Current batch size", labels, round(m.running))
    writer.gauge("tgi_batch_current_max_tokens", "Maximum tokens for the current batch", labels, m.reserved_tokens)
    writer.counter("tgi_request_count", "Total number of requests", labels, m.requests, suffix="")
    writer.counter("tgi_request_success", "Number of successful requests", labels, m.requests, suffix="")
    writer.histogram("tgi_batch_inference_duration", "Batch inference duration", {**labels, "method": "decode"}, m.itl)
    writer.histogram(
        "tgi_batch_inference_duration", "Batch inference duration", {**labels, "method": "prefill"}, m.prefill
    )
    writer.histogram("tgi_request_queue_duration", "Time spent in the queue per request", labels, m.ttft)
    writer.histogram(
        "tgi_request_mean_time_per_token_duration", "Mean time per token per request", labels, m.request_tpot
    )
    writer.histogram("tgi_request_input_length", "Input token length per request", labels, m.prompt_tokens)
    writer.histogram("tgi_request_generated_tokens", "Generated token length per request", labels, m.output_tokens)
    writer.histogram("tgi_batch_next_size", "Batch size of the next batch", labels, m.batch_size)


def exposition(sims: Iterable[DeploymentSim], now: float) -> str:
    """The /metrics text for every serving pod of every simulated deployment."""
    vllm, tgi = Writer(), Writer()
    for sim in sims:
        for pod in sim.serving_pods(now):
            if pod.metrics is None:
                continue
            if sim.engine == "vllm":
                write_vllm(vllm, pod_labels(sim, pod), pod.metrics)
            else:
                write_tgi(tgi, pod_labels(sim, pod), pod.metrics)
    return "".join(text for text in (vllm.text(), tgi.text()) if text.strip())
