"""vLLM: owned flags and how its parser reads them, the command line, attention backend, memory share and the
streaming probe, for the versions llmop supports (0.11 - 0.33); its metrics are in vllm_metrics."""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import MappingProxyType

from llmop.catalog.engines import ENGINES, Engine
from llmop.catalog.gpus import GPU
from llmop.catalog.versions import Version, in_range
from llmop.engines.argv import Occurrence
from llmop.engines.base import (
    MODEL_CACHE_PATH,
    ArgContext,
    AttentionChoice,
    AttentionKernel,
    Command,
    EngineLaunch,
    RuleBreak,
    TokenStream,
)
from llmop.engines.flags import FlagTable, argparse_table, human_int
from llmop.engines.streaming import NoRedirectSession, events, get_json
from llmop.engines.vllm_metrics import (
    FINE_ITL_BUCKETS_S,
    FINE_TTFT_BUCKETS_S,
    ITL_BUCKETS_S,
    custom_buckets_json,
    fine_histograms,
    latency_buckets_s,
    queries,
    slo_resolution_warning,
)

OWNED_FLAGS = frozenset(
    {
        "--model",
        "--quantization",
        "-q",
        "--tensor-parallel-size",
        "-tp",
        "--custom-histogram-buckets",
        "--pipeline-parallel-size",
        "-pp",
        "--data-parallel-size",
        "-dp",
        "--port",
        "--host",
        "--uds",
        "--dtype",
        "--max-model-len",
        "--revision",
        "--attention-backend",
        "--attention-config",
        "-ac",
        "--gpu-memory-utilization",
        "--device-memory-utilization",
        "--download-dir",
        "--load-format",
        "--config",  # a YAML file of options could set any owned flag
        "--headless",
    }
)
FIELD_FOR_FLAG = MappingProxyType(
    {
        "--quantization": "spec.quantization",
        "-q": "spec.quantization",
        "--tensor-parallel-size": "spec.gpu.count",
        "-tp": "spec.gpu.count",
        "--max-model-len": "spec.maxModelLen",
        "--model": "spec.model.name",
        "--revision": "spec.model.revision",
    }
)


FLAG_TABLE_RESOURCE = "vllm_0_33_0.json"
# TGI spellings people carry over to vLLM (for "did you mean").
FLAG_HINTS = MappingProxyType(
    {
        "--num-shard": "--tensor-parallel-size",
        "--quantize": "--quantization",
        "--max-total-tokens": "--max-model-len",
        "--max-input-tokens": "--max-model-len",
        "--cuda-memory-fraction": "--gpu-memory-utilization",
        "--hostname": "--host",
        "--model-id": "--model",
        "--huggingface-hub-cache": "--download-dir",
        "--max-concurrent-requests": "--max-num-seqs",
        "--max-batch-prefill-tokens": "--max-num-batched-tokens",
    }
)


def flag_table(version: Version) -> FlagTable:
    """vLLM 0.33.0's `vllm serve` flags (scripts/extract_vllm_flags.py). Older supported versions (0.11 - 0.32) are
    checked against this newest table: a flag added since is accepted for them, and an unknown-flag refusal names
    the version checked."""
    return argparse_table(FLAG_TABLE_RESOURCE)


def _switched_on(occurrence: Occurrence | None) -> bool:
    return occurrence is not None and occurrence.spelled not in occurrence.flag.negatives


def arg_rules(given: Mapping[str, Occurrence], context: ArgContext) -> list[RuleBreak]:
    """Checks vLLM makes before loading the model (entrypoints/common/cli_args.py validate_parsed_serve_args,
    config/scheduler.py verify_max_model_len)."""
    breaks: list[RuleBreak] = []

    def written(dest: str) -> tuple[int, str]:
        occurrence = given[dest]
        return occurrence.index, " ".join((occurrence.spelled, *occurrence.values))

    for flag, needs, dest in (
        ("--enable-auto-tool-choice", "--tool-call-parser", "enable_auto_tool_choice"),
        ("--enable-log-outputs", "--enable-log-requests", "enable_log_outputs"),
    ):
        needed = given.get(needs.removeprefix("--").replace("-", "_"))
        if _switched_on(given.get(dest)) and not (needed and (needed.values or _switched_on(needed))):
            breaks.append(RuleBreak(*written(dest), f"Error: {flag} requires {needs}", f"add {needs} or remove {flag}"))
    batched = given.get("max_num_batched_tokens")
    tokens = human_int(batched.values[-1]) if batched and batched.values else None
    seqs = given.get("max_num_seqs")
    seq_count = int(seqs.values[-1]) if seqs and seqs.values and seqs.values[-1].lstrip("+-").isdigit() else None
    if tokens is not None and seq_count is not None and tokens < seq_count:
        breaks.append(
            RuleBreak(
                *written("max_num_batched_tokens"),
                f"max_num_batched_tokens ({tokens}) must be greater than or equal to max_num_seqs ({seq_count}).",
                f"use --max-num-batched-tokens {seq_count} or more, or a smaller --max-num-seqs",
            )
        )
    chunked = given.get("enable_chunked_prefill")
    if tokens is not None and chunked is not None and not _switched_on(chunked) and tokens < context.max_model_len:
        breaks.append(
            RuleBreak(
                *written("max_num_batched_tokens"),
                f"max_num_batched_tokens ({tokens}) is smaller than max_model_len ({context.max_model_len}).",
                f"with chunked prefill off use --max-num-batched-tokens {context.max_model_len} or more "
                "(spec.maxModelLen), or keep chunked prefill on",
            )
        )
    return breaks


def owned_flag_set_by(arg: str) -> str | None:
    """vLLM 0.33 (FlexibleArgumentParser over argparse) turns `_` into `-` in flag names (`--tensor_parallel_size`),
    reads `--attention-config.backend=X` and `-ac.backend=X` as keys of `--attention-config`, takes an unambiguous
    prefix of a flag for the flag (allow_abbrev: `--tensor-parallel 4`, `-t 4`) and a one-letter short flag with
    its value attached (`-qawq`)."""
    name = arg.split("=", 1)[0]
    if name in OWNED_FLAGS:
        return name
    if not name.startswith("-") or len(name) < 2:
        return None
    if name.startswith("--"):
        long = "--" + name[2:].split(".", 1)[0].replace("_", "-")
        if len(long) <= 2:
            return None
        return next((flag for flag in sorted(OWNED_FLAGS) if flag.startswith("--") and flag.startswith(long)), None)
    short = name.split(".", 1)[0]
    for flag in sorted(OWNED_FLAGS):
        if flag.startswith("--"):
            continue
        if flag.startswith(short) or (len(flag) == 2 and short.startswith(flag)):
            return flag
    return None


def command(launch: EngineLaunch) -> Command:
    info = ENGINES[Engine.VLLM]
    env = {"HF_HOME": MODEL_CACHE_PATH, **dict(launch.attention.env)}
    args = [launch.model]
    if launch.revision:
        args += ["--revision", launch.revision]
    args += [
        "--host",
        "0.0.0.0",
        "--port",
        str(info.port),
        "--tensor-parallel-size",
        str(launch.tensor_parallel),
        "--max-model-len",
        str(launch.max_model_len),
        "--dtype",
        launch.dtype,
        "--gpu-memory-utilization",
        f"{launch.gpu_memory_utilization:.2f}",
    ]
    if launch.quantization_flag:
        args += ["--quantization", launch.quantization_flag]
    args += list(launch.attention.args)
    if fine_histograms(launch.version):
        args += ["--custom-histogram-buckets", custom_buckets_json()]
    return info.command, tuple(args), env


def attention(gpu: GPU, version: Version) -> AttentionChoice:
    """vLLM's backend for a dense decoder on this GPU, and the flag or env var for this version.

    0.33 picks the first of FLASH_ATTN, FLASHINFER, TRITON_ATTN that supports the GPU, except FlashInfer
    first on cc 10.x; FLASH_ATTN needs cc >= 8.0 and runs FA3 on sm9x, FA2 otherwise
    (platforms/cuda.py _get_backend_priorities, fa_utils.get_flash_attn_version). 0.11 used
    FlexAttention below cc 8.0. `--attention-backend` exists from 0.13.0; `VLLM_ATTENTION_BACKEND` was
    removed in 0.15.0, so versions before 0.13 get the env var.
    """
    if gpu.cc >= 100:
        kernel, backend = AttentionKernel.FLASHINFER, "FLASHINFER"
    elif gpu.cc >= 90:
        kernel, backend = AttentionKernel.FLASH_ATTENTION_3, "FLASH_ATTN"
    elif gpu.cc >= 80:
        kernel, backend = AttentionKernel.FLASH_ATTENTION_2, "FLASH_ATTN"
    elif in_range(version, None, "0.13.0"):
        kernel, backend = AttentionKernel.FLEX, "FLEX_ATTENTION"
    else:
        kernel, backend = AttentionKernel.TRITON, "TRITON_ATTN"
    note = None
    if gpu.cc < 80:
        note = (
            f"{gpu.name} (cc {gpu.cc_text}) cannot run FlashAttention-2 (needs cc 8.0); "
            f"vLLM uses {backend} instead, with slower prefill"
        )
    if in_range(version, "0.13.0", None):
        return AttentionChoice(kernel, ("--attention-backend", backend), (), note)
    return AttentionChoice(kernel, (), (("VLLM_ATTENTION_BACKEND", backend),), note)


def memory_fraction(version: Version) -> float:
    """--gpu-memory-utilization: 0.9 up to 0.19, 0.92 from 0.20."""
    return 0.92 if in_range(version, "0.20.0", None) else 0.9


def stream_tokens(endpoint: str, prompt: str, max_tokens: int, model: str | None, timeout_s: float) -> TokenStream:
    """A streaming /v1/completions request (the model from /v1/models when not given); the token count is the
    final chunk's `usage.completion_tokens` (stream_options.include_usage), else one per chunk with text."""
    session = NoRedirectSession()
    if model is None:
        model = str(get_json(session, f"{endpoint}/v1/models", timeout_s)["data"][0]["id"])
    payload = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0,
    }
    start = time.perf_counter()
    stamps: list[float] = []
    counted: int | None = None
    for chunk in events(session, f"{endpoint}/v1/completions", payload, timeout_s):
        if any(choice.get("text") for choice in chunk.get("choices") or []):
            stamps.append(time.perf_counter())
        usage = chunk.get("usage") or {}
        if isinstance(usage.get("completion_tokens"), int):
            counted = usage["completion_tokens"]
    return TokenStream(start, tuple(stamps), len(stamps) if counted is None else counted)


class VllmAdapter:
    """vLLM behind the EngineAdapter protocol."""

    engine = Engine.VLLM
    info = ENGINES[Engine.VLLM]
    owned_flags = OWNED_FLAGS
    field_for_flag: Mapping[str, str] = FIELD_FOR_FLAG
    gauges_need_traffic = False
    default_max_num_seqs = 256  # --max-num-seqs default before V1's per-GPU defaults (the planner's capacity model)
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


__all__ = ["FINE_ITL_BUCKETS_S", "FINE_TTFT_BUCKETS_S", "ITL_BUCKETS_S", "VllmAdapter"]  # the ladders, for callers
