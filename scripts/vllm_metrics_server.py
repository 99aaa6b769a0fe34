#!/usr/bin/env python3
"""Serve vLLM's own /metrics (PrometheusStatLogger, prometheus_client) fed with deterministic synthetic engine steps."""

# Runs inside the venv made by scripts/vllm-venv.sh (vllm==0.33.0, prometheus_client 0.26); it must not import llmop.
#
#   vllm_metrics_server.py --port P --ground-truth FILE [--tick-s 1] [--duration-s 0] [--workdir DIR]
#                          [-- VLLM_SERVE_ARGS...]
#
# The VllmConfig comes from `vllm serve`'s own parser and EngineArgs.create_engine_config on the CPU platform, for a
# tiny Llama config written to --workdir (no weights, no tokenizer: --skip-tokenizer-init), plus any `vllm serve`
# arguments after `--` (e.g. --custom-histogram-buckets '{...}'). Every tick replays the same requests through
# vLLM's IterationStats (update_from_output / update_from_finished_request, as the output processor calls them) and
# PrometheusStatLogger.record, under a lock that scrapes also take: a scrape sees whole ticks only, so every counter
# is (ticks fed) x (its per-tick increment). The ground-truth file says exactly what one tick feeds.
#
# /metrics is prometheus_client's own WSGI app (the same _bake_output as the ASGI app `vllm serve` mounts), so the
# content negotiation is the real one; /metrics/text004 drops the Accept header first (a scraper asking for text
# format 0.0.4 gets the same answer). Listens on 127.0.0.1 only.

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ["VLLM_TARGET_DEVICE"] = "cpu"
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # one process: vLLM then uses prometheus_client's REGISTRY

HOST = "127.0.0.1"
TEXT_PATH = "/metrics/text004"
TINY_LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "vocab_size": 512,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "torch_dtype": "bfloat16",
    "tie_word_embeddings": False,
}
# What the scheduler reports with every step (SchedulerStats): waiting includes the deferred requests.
GAUGES = {"num_running_reqs": 7, "num_waiting_reqs": 3, "num_skipped_waiting_reqs": 2, "kv_cache_usage": 0.4375}


@dataclass(frozen=True)
class Request:
    """One synthetic request: what the engine core reports for it, step by step."""

    prompt_tokens: int
    ttft_s: float  # frontend arrival -> first token
    queue_s: float  # QUEUED -> SCHEDULED (engine core clock)
    itls_s: tuple[float, ...]  # engine-core gaps between consecutive tokens (one per token after the first)
    max_tokens: int  # the request's max_tokens; reaching it finishes with "length", else "stop"


def _off_edge(value: float) -> float:
    """Round to 0.1 ms and add 0.05 ms: never on a bucket edge (vLLM's and llmop's ladders are 0.5 ms multiples)."""
    return round(value, 4) + 0.00005


def plan(seed: int, requests: int) -> list[Request]:
    """The requests one tick replays: 3/4 of the inter-token gaps 18-40 ms, the rest 40-70 ms; TTFT 50-600 ms."""
    rng = random.Random(seed)
    out: list[Request] = []
    for index in range(requests):
        tokens = rng.randrange(10, 24)
        itls = tuple(
            _off_edge(rng.uniform(0.018, 0.0395) if rng.random() < 0.75 else rng.uniform(0.0405, 0.07))
            for _ in range(tokens - 1)
        )
        out.append(
            Request(
                prompt_tokens=rng.randrange(64, 512),
                ttft_s=_off_edge(rng.uniform(0.05, 0.6)),
                queue_s=_off_edge(rng.uniform(0.001, 0.04)),
                itls_s=itls,
                max_tokens=tokens if index % 2 == 0 else 256,
            )
        )
    return out


def vllm_config(workdir: Path, extra: list[str]) -> Any:
    """A real VllmConfig from `vllm serve`'s parser for a tiny local Llama config (CPU platform, offline)."""
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.entrypoints.common.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    model = workdir / "tiny-llama"
    model.mkdir(parents=True, exist_ok=True)
    (model / "config.json").write_text(json.dumps(TINY_LLAMA), encoding="utf-8")
    args = [str(model), "--skip-tokenizer-init", "--max-model-len", "2048"]
    if "--served-model-name" not in extra:
        args += ["--served-model-name", "tiny-llama"]
    ns = make_arg_parser(FlexibleArgumentParser(prog="vllm serve")).parse_args(args + extra)
    if getattr(ns, "model_tag", None) is not None:
        ns.model = ns.model_tag
    return AsyncEngineArgs.from_cli_args(ns).create_engine_config()


class Feeder:
    """Replays the plan through vLLM's IterationStats into its PrometheusStatLogger; records what was observed."""

    def __init__(self, config: Any, requests: list[Request]) -> None:
        from vllm.v1.metrics.loggers import PrometheusStatLogger

        self.logger = PrometheusStatLogger(config, [0])
        self.logger.log_engine_initialized()
        self.requests = requests
        self.lock = threading.Lock()
        self.ticks = 0
        self.feed_ms = 0.0  # the longest a tick held the lock (scrapes wait that long at most)
        self.observed: dict[str, Any] | None = None

    def _request(self, rid: str, request: Request, seen: dict[str, list[Any]]) -> None:
        from vllm.v1.engine import EngineCoreEvent, EngineCoreEventType, EngineCoreOutput, FinishReason
        from vllm.v1.metrics.stats import (
            IterationStats,
            LoRARequestStates,
            PrefillStats,
            RequestStateStats,
            SchedulerStats,
        )

        state = RequestStateStats(arrival_time=0.0)  # frontend wall clock, synthetic
        lora = LoRARequestStates(log_stats=False)
        queued = 1.0  # engine-core monotonic clock, synthetic
        scheduled = queued + request.queue_s
        engine_ts = scheduled + request.ttft_s / 2  # the prefill step's timestamp
        steps = len(request.itls_s) + 1
        for step in range(steps):
            stats = IterationStats()
            if step == 0:
                stats.iteration_timestamp = request.ttft_s  # the frontend sees the first token at arrival + TTFT
                prefill = PrefillStats()
                prefill.set(request.prompt_tokens, 0, 0)
                events = [
                    EngineCoreEvent(EngineCoreEventType.QUEUED, queued),
                    EngineCoreEvent(EngineCoreEventType.SCHEDULED, scheduled),
                ]
                output = EngineCoreOutput(request_id=rid, new_token_ids=[1], events=events, prefill_stats=prefill)
            else:
                engine_ts += request.itls_s[step - 1]
                stats.iteration_timestamp = request.ttft_s + sum(request.itls_s[:step])
                output = EngineCoreOutput(request_id=rid, new_token_ids=[1])
            stats.update_from_output(output, engine_ts, step == 0, state, lora, None)
            if step == steps - 1:
                reason = FinishReason.LENGTH if steps >= request.max_tokens else FinishReason.STOP
                stats.update_from_finished_request(reason, rid, request.prompt_tokens, request.max_tokens, state)
            self.logger.record(SchedulerStats(**GAUGES), stats, engine_idx=0)
            seen["itl"] += stats.inter_token_latencies_iter
            seen["ttft"] += stats.time_to_first_tokens_iter
            seen["finished"] += stats.finished_requests
            seen["generation"].append(stats.num_generation_tokens)
            seen["prompt"].append(stats.num_prompt_tokens)

    def tick(self) -> None:
        """Feed one tick's steps; scrapes wait for the whole tick."""
        seen: dict[str, list[Any]] = {"itl": [], "ttft": [], "finished": [], "generation": [], "prompt": []}
        with self.lock:
            began = time.perf_counter()
            for index, request in enumerate(self.requests):
                self._request(f"req-{self.ticks}-{index}", request, seen)
            self.ticks += 1
            self.feed_ms = max(self.feed_ms, 1000 * (time.perf_counter() - began))
        observed = summarize(seen)
        if self.observed is None:
            self.observed = observed
        elif observed != self.observed:
            raise RuntimeError("a tick fed different samples than the first one")


def summarize(seen: dict[str, list[Any]]) -> dict[str, Any]:
    """The exact samples one tick fed to each family, as vLLM computed them."""
    finished = seen["finished"]
    reasons: dict[str, int] = {}
    for item in finished:
        reasons[str(item.finish_reason)] = reasons.get(str(item.finish_reason), 0) + 1
    return {
        "inter_token_latencies_s": list(seen["itl"]),
        "time_to_first_tokens_s": list(seen["ttft"]),
        "e2e_latencies_s": [item.e2e_latency for item in finished],
        "request_time_per_output_token_s": [item.mean_time_per_output_token for item in finished],
        "request_prompt_tokens": [item.num_prompt_tokens for item in finished],
        "request_generation_tokens": [item.num_generation_tokens for item in finished],
        "finished_reasons": reasons,
        "prompt_tokens_total": sum(seen["prompt"]),
        "generation_tokens_total": sum(seen["generation"]),
        "engine_steps": len(seen["generation"]),
    }


def serve(feeder: Feeder, port: int) -> Any:
    """prometheus_client's WSGI app on 127.0.0.1:port in a daemon thread; returns the server."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import REGISTRY, make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer

    metrics = make_wsgi_app(REGISTRY)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == TEXT_PATH:
            environ.pop("HTTP_ACCEPT", None)  # no Accept: prometheus_client answers text format 0.0.4
        with feeder.lock:
            return list(metrics(environ, start_response))

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = make_server(HOST, port, app, ThreadingWSGIServer, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ground-truth", type=Path, required=True, help="JSON written once serving")
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "vllm-metrics")
    parser.add_argument("--tick-s", type=float, default=1.0)
    parser.add_argument("--duration-s", type=float, default=0.0, help="0: until killed")
    parser.add_argument("--requests-per-tick", type=int, default=4)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args(argv)

    started = time.monotonic()
    with contextlib.redirect_stdout(sys.stderr):
        import vllm

        config = vllm_config(args.workdir, extra)
        feeder = Feeder(config, plan(args.seed, args.requests_per_tick))
    buckets = config.observability_config.custom_histogram_buckets or {}
    feeder.tick()  # before the first scrape: gauges never read their initial 0
    server = serve(feeder, args.port)
    doc = {
        "vllm_version": vllm.__version__,
        "prometheus_client_version": metadata.version("prometheus_client"),
        "model_name": config.model_config.served_model_name,
        "url": f"http://{HOST}:{args.port}/metrics",
        "text004_url": f"http://{HOST}:{args.port}{TEXT_PATH}",
        "tick_s": args.tick_s,
        "startup_s": round(time.monotonic() - started, 1),
        "first_tick_feed_ms": round(feeder.feed_ms, 1),
        "custom_histogram_buckets": {key: list(value) for key, value in buckets.items()},
        "scheduler_stats": GAUGES,
        "per_tick": feeder.observed,
    }
    write_json(args.ground_truth, doc)
    print(json.dumps({"ready": doc["url"], "startup_s": doc["startup_s"]}), flush=True)
    next_tick = time.monotonic() + args.tick_s
    try:
        while args.duration_s <= 0 or time.monotonic() - started < args.duration_s:
            time.sleep(max(0.0, next_tick - time.monotonic()))
            feeder.tick()
            next_tick += args.tick_s
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
