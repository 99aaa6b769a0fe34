"""The per-replica capacity model: decode step time from the plan, prefill cost, Little's law. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from llmop.engines import adapter
from llmop.plan.types import Plan

DEFAULT_PROMPT_TOKENS = 1024
DEFAULT_CHUNK_TOKENS = 2048  # chunked-prefill budget per step
# Share of the dense bf16 peak a prompt token's 2 x parameters FLOPs run at. Measured on an H200 (docs/
# prefill-calibration.md): 0.55 for a 2048-token chunk with an empty cache (62.8 ms against 66.5 ms here); no
# attention term, so a chunk after 14k cached tokens took 120 ms there.
PREFILL_EFFICIENCY = 0.5


@dataclass(frozen=True)
class CapacityModel:
    """Step time `base + batch * (per_seq + context * per_context)` ms, plus prefill cost, per replica."""

    base_ms: float
    per_seq_ms: float
    per_context_ms: float
    prefill_ms_per_token: float
    kv_cache_tokens: int
    max_num_seqs: int
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS

    @classmethod
    def from_plan(cls, plan: Plan, max_num_seqs: int | None = None) -> CapacityModel:
        model = plan.decode_model
        base = model.step_ms(0, 0.0)
        per_context = (model.step_ms(1, 1000.0) - model.step_ms(1, 0.0)) / 1000.0
        gpu = model.gpu
        prefill = model.flops_per_token / model.tensor_parallel / (gpu.fp16_tflops * 1e12 * PREFILL_EFFICIENCY) * 1e3
        if max_num_seqs is None:
            max_num_seqs = _engine_arg_int(plan.args, "--max-num-seqs")
            if max_num_seqs is None:
                max_num_seqs = adapter(plan.engine).default_max_num_seqs
        return cls(
            base_ms=base,
            per_seq_ms=model.step_ms(1, 0.0) - base,
            per_context_ms=per_context,
            prefill_ms_per_token=prefill,
            kv_cache_tokens=plan.kv_cache_tokens,
            max_num_seqs=max_num_seqs,
        )

    def step_ms(self, batch: float, context: float) -> float:
        return self.base_ms + batch * (self.per_seq_ms + context * self.per_context_ms)

    def batch_limit(self, context: float) -> int:
        """Most sequences a replica runs at once: KV-cache tokens over the context, capped by max-num-seqs."""
        return max(1, min(self.max_num_seqs, int(self.kv_cache_tokens // max(context, 1.0))))

    def slowed(self, factor: float) -> CapacityModel:
        """Every cost times `factor` (a model-error scenario: the real GPU is slower than planned)."""
        return replace(
            self,
            base_ms=self.base_ms * factor,
            per_seq_ms=self.per_seq_ms * factor,
            per_context_ms=self.per_context_ms * factor,
            prefill_ms_per_token=self.prefill_ms_per_token * factor,
        )

    def to_dict(self) -> dict[str, float]:
        return {
            "baseMs": self.base_ms,
            "perSeqMs": self.per_seq_ms,
            "perContextMs": self.per_context_ms,
            "prefillMsPerToken": self.prefill_ms_per_token,
            "kvCacheTokens": self.kv_cache_tokens,
            "maxNumSeqs": self.max_num_seqs,
        }


def _engine_arg_int(args: tuple[str, ...], flag: str) -> int | None:
    for index, arg in enumerate(args):
        text = arg.split("=", 1)[1] if arg.startswith(flag + "=") else None
        if arg == flag and index + 1 < len(args):
            text = args[index + 1]
        if text is not None and text.isdigit():
            return int(text)
    return None


def mean_itl_ms(model: CapacityModel, rps: float, prompt_tokens: float, output_tokens: float) -> float:
    """Mean inter-token time of one replica offered `rps`; inf when it cannot keep up (batch at its cap).

    Little's law: N = rps x output x ITL(N), ITL(N) = step(N) / (1 - prefill share), step affine in N.
    """
    context = prompt_tokens + output_tokens / 2
    share = rps * prompt_tokens * model.prefill_ms_per_token / 1000.0
    per_seq = model.per_seq_ms + context * model.per_context_ms
    denominator = 1000.0 * (1.0 - share) - rps * output_tokens * per_seq
    if share >= 1 or denominator <= 0:
        return math.inf
    running = rps * output_tokens * model.base_ms / denominator
    if running >= model.batch_limit(context):
        return math.inf
    return model.step_ms(running, context) / (1.0 - share)


def itl_ms(
    model: CapacityModel, rps: float, prompt_tokens: float, output_tokens: float, percentile: float | None = None
) -> float:
    """The mean inter-token time (`percentile` None), or its percentile under chunked prefill.

    A step that carries a prefill chunk is longer for every sequence decoding in it. While fewer than
    (100 - percentile) % of the steps carry one, the percentile sits among ordinary steps (the mean, which
    spreads prefill over every step, bounds it from above); beyond that it is a prefill step: the decode step
    plus one chunk's prefill. That is the cliff a percentile SLO meets under prompt-heavy load."""
    mean = mean_itl_ms(model, rps, prompt_tokens, output_tokens)
    if percentile is None or not math.isfinite(mean) or rps <= 0 or prompt_tokens <= 0:
        return mean
    prefill_share = rps * prompt_tokens * model.prefill_ms_per_token / 1000.0
    decode_step = mean * (1.0 - prefill_share)  # mean = step / (1 - share)
    steps_per_s = 1000.0 * (1.0 - prefill_share) / max(decode_step, 1e-9)
    chunks_per_s = rps * math.ceil(prompt_tokens / model.chunk_tokens)
    if chunks_per_s / max(steps_per_s, 1e-9) <= 1.0 - percentile / 100.0:
        return mean
    return max(mean, decode_step + min(prompt_tokens, model.chunk_tokens) * model.prefill_ms_per_token)


def replicas_for(
    model: CapacityModel,
    rps: float,
    prompt_tokens: float,
    output_tokens: float,
    target_ms: float,
    limit: int,
    percentile: float | None = None,
) -> int:
    """Fewest replicas (<= limit) whose ITL (mean, or `percentile`) stays within `target_ms` for `rps`; `limit` if
    none does."""
    if rps <= 0:
        return 0
    for replicas in range(1, max(limit, 1) + 1):
        if itl_ms(model, rps / replicas, prompt_tokens, output_tokens, percentile) <= target_ms:
            return replicas
    return max(limit, 1)
