"""TGI 3.x: owned flags and how its launcher reads them, the command line, attention, memory share, PromQL,
histogram buckets and the streaming probe."""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import MappingProxyType

from llmop.catalog.engines import ENGINES, Engine
from llmop.catalog.gpus import GPU
from llmop.catalog.versions import Version
from llmop.engines.argv import Occurrence, read_argv
from llmop.engines.base import (
    MODEL_CACHE_PATH,
    ArgContext,
    AttentionChoice,
    AttentionKernel,
    Command,
    EngineLaunch,
    RuleBreak,
    TokenStream,
    bucket_around,
)
from llmop.engines.flags import FlagTable, clap_table
from llmop.engines.promql import BY, Query, counter_rate, gauge_sum, growth, mean_of, quantile_of
from llmop.engines.streaming import NoRedirectSession, events


def _duration_buckets(count: int = 35, start: float = 0.0001, ratio: float = 1.5) -> tuple[float, ...]:
    """35 geometric buckets from 0.0001 * 1.5 with ratio 1.5 (router/src/server.rs), multiplied in a loop as the
    router does (`value *= 1.5`), so the `le` strings match a real scrape."""
    edges: list[float] = []
    value = start
    for _ in range(count):
        value *= ratio
        edges.append(value)
    return tuple(edges)


DURATION_BUCKETS_S: tuple[float, ...] = _duration_buckets()

OWNED_FLAGS = frozenset(
    {
        "--model-id",
        "--quantize",
        "--num-shard",
        "--sharded",
        "--port",
        "-p",
        "--hostname",
        "--dtype",
        "--max-total-tokens",
        "--max-input-tokens",
        "--max-input-length",
        "--revision",
        "--huggingface-hub-cache",
        "--prometheus-port",
    }
)
FIELD_FOR_FLAG = MappingProxyType(
    {
        "--quantize": "spec.quantization",
        "--num-shard": "spec.gpu.count",
        "--sharded": "spec.gpu.count",
        "--max-total-tokens": "spec.maxModelLen",
        "--max-input-tokens": "spec.maxModelLen",
        "--max-input-length": "spec.maxModelLen",
        "--model-id": "spec.model.name",
        "--revision": "spec.model.revision",
    }
)
_SHORT_FLAGS_WITHOUT_VALUE = frozenset({"e"})  # --env; a cluster goes on after it
FLAG_TABLE_RESOURCE = "tgi_launcher_3_3_7.json"
# vLLM spellings people carry over to TGI (for "did you mean").
FLAG_HINTS = MappingProxyType(
    {
        "--tensor-parallel-size": "--num-shard",
        "--quantization": "--quantize",
        "--max-model-len": "--max-total-tokens",
        "--gpu-memory-utilization": "--cuda-memory-fraction",
        "--host": "--hostname",
        "--model": "--model-id",
        "--served-model-name": "--model-id",
        "--download-dir": "--huggingface-hub-cache",
        "--max-num-seqs": "--max-concurrent-requests",
        "--max-num-batched-tokens": "--max-batch-prefill-tokens",
    }
)
# The launcher's `max_batch_prefill_tokens` default on a card it cannot rate (launcher/src/main.rs, compute_optimal
# None); with prefill chunking off the router needs it >= max_input_tokens (backends/v3/src/main.rs:188).
LAUNCHER_DEFAULT_PREFILL_TOKENS = 4096


def flag_table(version: Version) -> FlagTable:
    """The launcher flags of TGI 3.3.7 (scripts/extract_tgi_launcher_flags.py). Older supported 3.x versions are
    checked against this newest table; an unknown-flag refusal names the version checked."""
    return clap_table(FLAG_TABLE_RESOURCE)


def _int(occurrence: Occurrence | None) -> int | None:
    value = occurrence.values[-1] if occurrence and occurrence.values else None
    return int(value) if value is not None and value.lstrip("+").isdigit() else None


def prefill_chunking(attention: AttentionKernel, speculate: int | None) -> tuple[bool, str]:
    """Whether TGI chunks prefills, and why not: only with flashinfer/flashdecoding attention and no speculation
    (server models/model.py)."""
    if attention is AttentionKernel.PAGED:
        return False, "paged attention on this GPU turns prefill chunking off"
    if speculate:
        return False, "--speculate turns prefill chunking off"
    return True, ""


def _user_flags(engine_args: tuple[str, ...]) -> dict[str, Occurrence]:
    occurrences, _ = read_argv(flag_table((0, 0, 0)), list(engine_args))
    return {occurrence.flag.dest: occurrence for occurrence in occurrences}


def rendered_prefill_tokens(launch: EngineLaunch) -> int | None:
    """`--max-batch-prefill-tokens` llmop renders so the router accepts max-input-tokens when chunking is off and
    the launcher's default (4096 on a card it cannot rate) is below it; None when the user sets it (then it is
    checked instead) or chunking is on."""
    given = _user_flags(launch.engine_args)
    chunking, _ = prefill_chunking(launch.attention.kernel, _int(given.get("speculate")))
    if chunking or "max_batch_prefill_tokens" in given:
        return None
    return launch.max_model_len if launch.max_model_len - 1 > LAUNCHER_DEFAULT_PREFILL_TOKENS else None


def arg_rules(given: Mapping[str, Occurrence], context: ArgContext) -> list[RuleBreak]:
    """The launcher's and router's argument validation (launcher/src/main.rs, backends/v3/src/main.rs)."""
    breaks: list[RuleBreak] = []

    def written(dest: str) -> tuple[int, str]:
        occurrence = given[dest]
        return occurrence.index, " ".join((occurrence.spelled, *occurrence.values))

    total, max_input = context.max_model_len, context.max_model_len - 1
    if _int(given.get("validation_workers")) == 0:
        breaks.append(RuleBreak(*written("validation_workers"), "`validation_workers` must be > 0", "use 1 or more"))
    batch_total = _int(given.get("max_batch_total_tokens"))
    if batch_total is not None and batch_total < total:
        breaks.append(
            RuleBreak(
                *written("max_batch_total_tokens"),
                f"`max_total_tokens` must be <= `max_batch_total_tokens`. Given: {total} and {batch_total}",
                f"llmop sets --max-total-tokens to spec.maxModelLen ({total}); use --max-batch-total-tokens {total} "
                "or more, or lower spec.maxModelLen",
            )
        )
    prefill = _int(given.get("max_batch_prefill_tokens"))
    chunking, why = prefill_chunking(context.attention, _int(given.get("speculate")))
    if prefill is not None and prefill < max_input and not chunking:
        breaks.append(
            RuleBreak(
                *written("max_batch_prefill_tokens"),
                "`max_batch_prefill_tokens` must be >= `max_input_tokens`. "
                f"Given: {prefill} and {max_input} (the router, once the model is loaded)",
                f"{why}, so a whole prompt (up to --max-input-tokens {max_input}, from spec.maxModelLen) must fit in "
                f"one prefill batch; use --max-batch-prefill-tokens {max_input} or more, or lower spec.maxModelLen",
            )
        )
    if prefill is not None and batch_total is not None and prefill > batch_total:
        breaks.append(
            RuleBreak(
                *written("max_batch_prefill_tokens"),
                f"`max_batch_prefill_tokens` must be <= `max_batch_total_tokens`. Given: {prefill} and {batch_total}",
                f"use --max-batch-prefill-tokens {batch_total} or less, or raise --max-batch-total-tokens",
            )
        )
    if "ngrok" in given:
        for needed in ("ngrok_authtoken", "ngrok_edge"):
            if needed not in given:
                name = needed.replace("_", "-")
                breaks.append(
                    RuleBreak(
                        *written("ngrok"),
                        f"`{name}` must be set when using ngrok tunneling",
                        f"add --{name} or remove --ngrok",
                    )
                )
    return breaks


def owned_flag_set_by(arg: str) -> str | None:
    """TGI's launcher (clap 4) takes a short flag with its value attached (`-p9000`) and clusters of short flags
    (`-ep9000`: --env, then --port 9000); long flags only by their exact name."""
    name = arg.split("=", 1)[0]
    if name in OWNED_FLAGS:
        return name
    if not name.startswith("-") or len(name) < 2 or name.startswith("--"):
        return None
    for letter in arg[1:]:
        if f"-{letter}" in OWNED_FLAGS:
            return f"-{letter}"
        if letter not in _SHORT_FLAGS_WITHOUT_VALUE:
            return None
    return None


def command(launch: EngineLaunch) -> Command:
    info = ENGINES[Engine.TGI]
    env = {"HF_HOME": MODEL_CACHE_PATH, **dict(launch.attention.env)}
    args = ["--model-id", launch.model]
    if launch.revision:
        args += ["--revision", launch.revision]
    args += [
        "--hostname",
        "0.0.0.0",
        "--port",
        str(info.port),
        "--num-shard",
        str(launch.tensor_parallel),
        "--max-input-tokens",
        str(launch.max_model_len - 1),
        "--max-total-tokens",
        str(launch.max_model_len),
    ]
    # `--dtype` "cannot be used with --quantize" (launcher/src/main.rs Args docs).
    if launch.quantization_flag:
        args += ["--quantize", launch.quantization_flag]
    else:
        args += ["--dtype", launch.dtype]
    prefill = rendered_prefill_tokens(launch)
    if prefill is not None:
        args += ["--max-batch-prefill-tokens", str(prefill)]
    args += list(launch.attention.args)
    return info.command, tuple(args), env


def attention(gpu: GPU, version: Version) -> AttentionChoice:
    """FlashInfer decode with FA2 prefill from cc 8.0, paged below.

    The launcher defaults ATTENTION to flashinfer and falls back to paged for cc < 8
    (launcher/src/main.rs resolve_attention); prefix caching is only supported with flashinfer or
    flashdecoding, so paged attention also sets PREFIX_CACHING=0.
    """
    if gpu.cc >= 80:
        return AttentionChoice(AttentionKernel.FLASHINFER, (), (("ATTENTION", "flashinfer"),))
    return AttentionChoice(
        AttentionKernel.PAGED,
        (),
        (("ATTENTION", "paged"), ("PREFIX_CACHING", "0")),
        f"{gpu.name} (cc {gpu.cc_text}) cannot run FlashAttention-2 (needs cc 8.0); "
        "TGI uses paged attention with the FlashAttention-1 prefill build",
    )


def memory_fraction(version: Version) -> float:
    """TGI's --cuda-memory-fraction default with its wiggle room: 0.90."""
    return 0.9


def queries(version: Version | None) -> tuple[Query, ...]:
    # Decode latency: TGI has no per-token histogram. `tgi_batch_inference_duration` has one sample per batch step
    # (router/src/server.rs), `method="decode"` or `"prefill"`, and every step gives each running sequence its next
    # token, or (prefill without chunking) stalls it until the next one: both methods together are the gaps the
    # running sequences see, one sample per batch rather than per sequence. The per-request
    # `tgi_request_mean_time_per_token_duration` (inference time / generated tokens) is no TPOT: it spreads the
    # request's own prefill over its tokens, so short answers read their time to first token as decode latency
    # (a steady load read 61 ms at 12 L4 replicas where 7 kept every minute's token p95 under 39 ms; BENCHMARKS.md).
    steps = "rate(tgi_batch_inference_duration_bucket{${selector}}[${window}])"
    ttft = _ttft_estimate()
    return (
        Query(
            "decode_latency_quantile",
            quantile_of(steps),
            "s",
            "p-quantile of the batch steps (decode and prefill): the gaps the running sequences see",
        ),
        Query("decode_latency_buckets", f"sum by (le) ({steps})", "1/s", "batch-step bucket rates"),
        Query("decode_latency_mean", mean_of("tgi_batch_inference_duration"), "s", "mean batch step"),
        Query(
            "decode_samples",
            f"sum by ({BY}) (increase(tgi_batch_inference_duration_count{{${{selector}}}}[${{window}}]))",
            "steps",
            "batch steps in the window",
        ),
        Query("running", gauge_sum("tgi_batch_current_size"), "requests", "in the batch"),
        Query("waiting", gauge_sum("tgi_queue_size"), "requests", "queued"),
        Query(
            "waiting_growth",
            growth("tgi_queue_size"),
            "1/s",
            "how fast the queue grows (arrivals beyond what is admitted)",
        ),
        Query("ttft_quantile", ttft, "s", "queue time plus prefill step: means plus root-sum-square of the tails"),
        Query("request_rate", counter_rate("tgi_request_success"), "1/s", "finished requests per second"),
        Query("mean_prompt_tokens", mean_of("tgi_request_input_length"), "tokens", "mean prompt length"),
        Query("mean_output_tokens", mean_of("tgi_request_generated_tokens"), "tokens", "mean output length"),
    )


def _ttft_estimate() -> str:
    """TGI has no TTFT histogram; a first token waits in the queue, then for its prefill step. The p-quantile of that
    sum from the two histograms, as for independent parts: the means plus the root-sum-square of each one's
    p-quantile above its mean. (Queue quantile plus the mean step misses the slow steps of long prompts; the two
    quantiles added count both tails at once.)"""
    excess: list[str] = []
    means: list[str] = []
    for metric, method in (("tgi_request_queue_duration", ""), ("tgi_batch_inference_duration", 'method="prefill",')):
        mean = f"({mean_of(metric, method)})"
        tail = quantile_of(f"rate({metric}_bucket{{{method}${{selector}}}}[${{window}}])")
        excess.append(f"({tail} - on ({BY}) {mean})")
        means.append(mean)
    squares = f" + on ({BY}) ".join(f"{part} * on ({BY}) {part}" for part in excess)
    return f"{means[0]} + on ({BY}) {means[1]} + on ({BY}) sqrt({squares})"


def latency_buckets_s(version: Version | None = None) -> tuple[float, ...]:
    return DURATION_BUCKETS_S


def slo_resolution_warning(target_ms: float, version: Version | None = None) -> str | None:
    """TGI's geometric buckets are 1.5x apart everywhere and cannot be changed: say which edge the SLO is judged at
    when the target is not within 0.5 ms of one."""
    bucket = bucket_around(DURATION_BUCKETS_S, target_ms)
    if bucket is None:
        return None
    lower = DURATION_BUCKETS_S[0] * 1000 if bucket[0] is None else bucket[0]
    upper = lower if bucket[1] is None else bucket[1]
    return (
        f"SLO {target_ms:g} ms falls inside TGI's {lower:.1f}-{upper:.1f} ms batch-step bucket (TGI's buckets "
        f"are fixed, 1.5x apart); the autoscaler judges it conservatively: a breach when more than the SLO's share "
        f"of batch steps is above {lower:.1f} ms. A target on an edge ({lower:.1f} or {upper:.1f} ms) is judged exactly"
    )


def stream_tokens(endpoint: str, prompt: str, max_tokens: int, model: str | None, timeout_s: float) -> TokenStream:
    """A streaming /generate_stream request (TGI sends one event per token; special tokens are not counted)."""
    payload = {"inputs": prompt, "parameters": {"max_new_tokens": max_tokens}}
    start = time.perf_counter()
    stamps: list[float] = []
    for event in events(NoRedirectSession(), f"{endpoint}/generate_stream", payload, timeout_s):
        token = event.get("token") or {}
        if "error" in event:
            raise RuntimeError(f"TGI stream error: {event.get('error_type') or 'generation'}")
        if not token.get("special", False):
            stamps.append(time.perf_counter())
    return TokenStream(start, tuple(stamps), len(stamps))


class TgiAdapter:
    """TGI behind the EngineAdapter protocol."""

    engine = Engine.TGI
    info = ENGINES[Engine.TGI]
    owned_flags = OWNED_FLAGS
    field_for_flag: Mapping[str, str] = FIELD_FOR_FLAG
    gauges_need_traffic = True  # tgi_queue_size / tgi_batch_current_size are created by the first request
    default_max_num_seqs = 4096  # bounded by its token budget only
    flag_hints: Mapping[str, str] = FLAG_HINTS
    flag_table = staticmethod(flag_table)
    arg_rules = staticmethod(arg_rules)
    owned_flag_set_by = staticmethod(owned_flag_set_by)
    command = staticmethod(command)
    attention = staticmethod(attention)
    memory_fraction = staticmethod(memory_fraction)
    queries = staticmethod(queries)
    latency_buckets_s = staticmethod(latency_buckets_s)
    slo_resolution_warning = staticmethod(slo_resolution_warning)
    stream_tokens = staticmethod(stream_tokens)
