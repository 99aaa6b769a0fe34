"""The replay's own cost model of one engine replica: decode/prefill step times and the engine's batching limits."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from llmop.catalog.gpus import GPUS
from llmop.catalog.models import resolve_model

GIB = 1024**3

# ---- Decode step: a roofline fitted to ../shared/reference/calibration.md (Llama-3-8B shapes, bf16) ----------------
# step_s = layers * LAUNCH_S_PER_LAYER                                  (kernel launches, norms, sampling; constant)
#        + streamed weight bytes / TP / (bandwidth * ETA_WEIGHTS * method efficiency)
#        + KV-cache bytes read / TP / (bandwidth * ETA_KV)
#        + batch * EXPOSED_COMPUTE * (2 * params FLOPs) / (peak FLOPs * TP * method compute speedup)
# "Streamed weights" are every weight but the input embedding (a row lookup): 15.01e9 bytes for the 8B model, the
# 13.98 GiB the calibration names. Fit: for ETA_WEIGHTS on a 0.005 grid and ETA_KV on a 0.005 grid, the constant and
# the per-sequence slope by least squares on the relative error over the 35 bf16 rows (H100 and H200 together);
# the constant and ETA_WEIGHTS are degenerate (0.85-0.95 all fit within 8.5%), so ETA_WEIGHTS was set to 0.88, the
# bandwidth a device copy reaches (89-90%), and the rest fitted: constant 0.815 ms (= 25.5 us x 32 layers),
# ETA_KV 0.955, slope 0.0099 ms per sequence = 0.61 of the 16.2 us a token's 2 x 8.03e9 FLOPs take at 989 TFLOPS
# (the part of the GEMM work that does not hide under the weight stream). Result: every bf16 row within 8.0% (rms
# 3.1%); see tests/unit/test_replay_engine.py.
LAUNCH_S_PER_LAYER = 0.815e-3 / 32
ETA_WEIGHTS = 0.88
ETA_KV = 0.955
EXPOSED_COMPUTE = 0.61
ALLREDUCE_S = 8e-6  # one small-message NVLink all-reduce; two per layer under tensor parallelism (assumption)

# ---- Prefill: compute bound. Dense bf16 GEMMs at prefill sizes reach 60-70% of the 989 TFLOPS dense Hopper peak in
# cuBLAS and FlashAttention-3 ~60%; the whole forward (norms, RoPE, activation, sampling, the scheduler's share)
# lands lower, so PREFILL_MFU = 0.45: an 8B model then prefills ~28k tokens/s on one H100 (a 2k prompt in 77 ms with
# its attention and the launch constant), in line with published vLLM TTFTs. Not measured here; an assumption.
# A mixed step streams the weights once: max(weight stream, prefill GEMMs) plus the rest.
PREFILL_MFU = 0.45


@dataclass(frozen=True)
class QuantCost:
    """How a weight format costs: bytes per (quantizable) weight, bandwidth efficiency vs bf16, GEMM speedup."""

    bytes_per_weight: float
    bandwidth_efficiency: float
    compute_speedup: float = 1.0


# fp8: efficiency fitted to the six fp8 calibration rows (0.88 on a 0.005 grid with the bf16 constants above, the
# lm_head kept in bf16 and the per-sequence compute halved by FP8 tensor cores): all within 3.4%. So halving the
# bytes gives ~1.4x, not 2x, as measured. INT4 (AWQ/GPTQ Marlin) and bitsandbytes figures are assumptions: Marlin
# stays near its byte ratio only at small batch (0.70); bitsandbytes dequantizes in slow kernels (0.30-0.35).
QUANT: dict[str, QuantCost] = {
    "none": QuantCost(2.0, 1.0),
    "fp8": QuantCost(1.0, 0.88, 2.0),
    "awq": QuantCost(4.16 / 8, 0.70),
    "gptq": QuantCost(4.16 / 8, 0.70),
    "int8": QuantCost(1.0, 0.35),
    "nf4": QuantCost(4.5 / 8, 0.30),
    "fp4": QuantCost(4.5 / 8, 0.30),
}

# vLLM 0.33 defaults for the OpenAI server (vllm/engine/arg_utils.py, EngineArgs.get_batch_defaults): on a GPU with
# at least 70 GiB whose name is not A100, max_num_batched_tokens 8192 and max_num_seqs 1024; otherwise 2048 and 256.
# V1 always chunks prefills. TGI 3.3.7: --max-batch-prefill-tokens defaults to 4096 on a card the launcher cannot
# rate, --max-batch-total-tokens to what fits in memory (the plan's KV tokens), --waiting-served-ratio 1.2,
# --max-waiting-tokens 20; prefill chunking is on except with paged attention or --speculate.
TGI_DEFAULT_PREFILL_TOKENS = 4096
TGI_MAX_BATCH = 4096  # no sequence cap unless --max-batch-size; the token budget binds first


def engine_arg(args: tuple[str, ...] | list[str], name: str) -> str | None:
    """The last value of `--name V` / `--name=V` (vLLM's `_` spelling too) in an argv, or None."""
    value = None
    alternate = "--" + name[2:].replace("-", "_")
    for i, arg in enumerate(args):
        for flag in (name, alternate):
            if arg == flag and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith(flag + "="):
                value = arg.split("=", 1)[1]
    return value


def _int_arg(args: tuple[str, ...] | list[str], name: str) -> int | None:
    value = engine_arg(args, name)
    return int(value) if value is not None else None


@dataclass(frozen=True)
class Hardware:
    """One replica's physics (model x GPU x TP x weight format) and its engine's batching limits.

    All times are seconds and already include `gpu_speed` (0.8: every step takes 1/0.8 as long).
    """

    gpu: str
    tensor_parallel: int
    bandwidth_bps: float  # per GPU, spec
    peak_flops: float  # per GPU, dense fp16/bf16
    layers: int
    weight_bytes: float  # streamed per step, whole replica
    flops_per_token: float  # 2 x parameters
    attention_flops_per_pair: float  # 4 x layers x query heads x head dim, per (query, key) pair
    kv_bytes_per_token: float  # whole replica
    quant: QuantCost = QUANT["none"]
    engine: str = "vllm"
    max_num_seqs: int = 256
    max_batched_tokens: int = 2048  # vLLM chunk budget per step; TGI --max-batch-prefill-tokens
    kv_cache_tokens: int = 100_000  # vLLM KV-cache capacity; TGI --max-batch-total-tokens
    max_model_len: int = 8192
    chunked_prefill: bool = True
    waiting_served_ratio: float = 1.2  # TGI
    max_waiting_tokens: int = 20  # TGI
    gpu_speed: float = 1.0
    noise_sigma: float = 0.04  # lognormal sigma of a step's time

    # ---- costs ---------------------------------------------------------------------------------------------
    @cached_property
    def weights_s(self) -> float:
        """Streaming the weights once (per step)."""
        bw = self.bandwidth_bps * self.tensor_parallel * ETA_WEIGHTS * self.quant.bandwidth_efficiency
        return self.weight_bytes / bw / self.gpu_speed

    @cached_property
    def base_s(self) -> float:
        """Launch/sync constant of every step."""
        comm = 2 * self.layers * ALLREDUCE_S if self.tensor_parallel > 1 else 0.0
        return (self.layers * LAUNCH_S_PER_LAYER + comm) / self.gpu_speed

    @cached_property
    def per_seq_s(self) -> float:
        flops = self.peak_flops * self.tensor_parallel * self.quant.compute_speedup
        return EXPOSED_COMPUTE * self.flops_per_token / flops / self.gpu_speed

    @cached_property
    def per_kv_token_s(self) -> float:
        return self.kv_bytes_per_token / (self.bandwidth_bps * self.tensor_parallel * ETA_KV) / self.gpu_speed

    @cached_property
    def prefill_token_s(self) -> float:
        """GEMM time of one prompt token."""
        return self.flops_per_token / (self.peak_flops * self.tensor_parallel * PREFILL_MFU) / self.gpu_speed

    @cached_property
    def attention_pair_s(self) -> float:
        return self.attention_flops_per_pair / (self.peak_flops * self.tensor_parallel * PREFILL_MFU) / self.gpu_speed

    @cached_property
    def decode_fixed_s(self) -> float:
        """Constant part of a pure decode step: launches plus the weight stream."""
        return self.base_s + self.weights_s

    def decode_step_s(self, batch: int, kv_tokens: float) -> float:
        """A decode step of `batch` sequences holding `kv_tokens` KV-cache tokens in total."""
        if batch <= 0:
            return 0.0
        return self.decode_fixed_s + batch * self.per_seq_s + kv_tokens * self.per_kv_token_s

    def mixed_step_s(self, batch: int, kv_tokens: float, prefill_tokens: int, attention_pairs: float) -> float:
        """A step with `batch` decoding sequences and `prefill_tokens` prompt tokens (their `attention_pairs` =
        sum over chunks of chunk x (start + chunk / 2)); prompt GEMMs overlap the weight stream (roofline max)."""
        gemm = max(self.weights_s, prefill_tokens * self.prefill_token_s)
        return (
            self.base_s
            + gemm
            + batch * self.per_seq_s
            + kv_tokens * self.per_kv_token_s
            + attention_pairs * self.attention_pair_s
        )

    @property
    def gpus(self) -> int:
        return self.tensor_parallel

    def slowed(self, gpu_speed: float) -> Hardware:
        return replace(self, gpu_speed=gpu_speed)

    # ---- construction --------------------------------------------------------------------------------------
    @classmethod
    def for_model(
        cls, model_key: str, gpu: str, *, tensor_parallel: int = 1, quantization: str = "none", **limits: Any
    ) -> Hardware:
        """From catalog facts alone (tests, references): `model_key` a catalog name, `gpu` a catalog GPU name."""
        model = resolve_model(model_key)
        if model is None:
            raise ValueError(f"unknown model {model_key}")
        arch = model.architecture
        quant = QUANT.get(quantization, QUANT["none"])
        if quant.compute_speedup > 1 and not GPUS[gpu].native_fp8:
            quant = replace(quant, compute_speedup=1.0)  # weight-only fp8 (Marlin W8A16) below cc 8.9
        input_embedding = arch.vocab_size * arch.hidden_size
        lm_head = 0 if arch.tied_embeddings else input_embedding
        quantizable = arch.parameters - input_embedding - lm_head
        spec = GPUS[gpu]
        return cls(
            gpu=gpu,
            tensor_parallel=tensor_parallel,
            bandwidth_bps=spec.bandwidth_gbs * 1e9,
            peak_flops=spec.fp16_tflops * 1e12,
            layers=arch.layers,
            weight_bytes=quantizable * quant.bytes_per_weight + 2.0 * (lm_head or input_embedding),
            flops_per_token=2.0 * arch.parameters,
            attention_flops_per_pair=4.0 * arch.layers * arch.attention_heads * arch.head_dim,
            kv_bytes_per_token=float(arch.kv_bytes_per_token(limits.pop("kv_dtype_bytes", 2))),
            quant=quant,
            **limits,
        )

    @classmethod
    def from_plan(cls, plan: Any, gpu_speed: float = 1.0, noise_sigma: float = 0.04) -> Hardware:
        """What the rendered Deployment would run: the plan's GPU, TP, weight format, KV size and engine flags.

        Reads only deployment facts (never the plan's decode model or latency estimates)."""
        args = tuple(plan.args)
        engine = str(plan.engine).lower()
        spec = GPUS[plan.gpu_type]
        kv_dtype = engine_arg(args, "--kv-cache-dtype") or ""
        limits: dict[str, Any] = {
            "engine": engine,
            "max_model_len": int(plan.max_model_len),
            "gpu_speed": gpu_speed,
            "noise_sigma": noise_sigma,
        }
        if engine == "tgi":
            batch = _int_arg(args, "--max-batch-size")
            limits["max_num_seqs"] = batch if batch is not None else TGI_MAX_BATCH
            prefill = _int_arg(args, "--max-batch-prefill-tokens")
            limits["max_batched_tokens"] = prefill if prefill is not None else TGI_DEFAULT_PREFILL_TOKENS
            total = _int_arg(args, "--max-batch-total-tokens")
            limits["kv_cache_tokens"] = min(total, plan.kv_cache_tokens) if total else int(plan.kv_cache_tokens)
            limits["chunked_prefill"] = plan.attention_backend != "paged" and engine_arg(args, "--speculate") is None
            ratio = engine_arg(args, "--waiting-served-ratio")
            if ratio is not None:
                limits["waiting_served_ratio"] = float(ratio)
            waiting = _int_arg(args, "--max-waiting-tokens")
            if waiting is not None:
                limits["max_waiting_tokens"] = waiting
        else:
            big = spec.memory_gib >= 70 and "A100" not in spec.name
            seqs = _int_arg(args, "--max-num-seqs")
            limits["max_num_seqs"] = seqs if seqs is not None else (1024 if big else 256)
            tokens = _int_arg(args, "--max-num-batched-tokens")
            limits["max_batched_tokens"] = tokens if tokens is not None else (8192 if big else 2048)
            limits["kv_cache_tokens"] = int(plan.kv_cache_tokens)
        limits["kv_dtype_bytes"] = 1 if kv_dtype.startswith("fp8") else 2
        quantization = str(plan.quantization or "none").lower()
        if resolve_model(plan.model_name) is not None:
            return cls.for_model(
                plan.model_name,
                plan.gpu_type,
                tensor_parallel=plan.tensor_parallel,
                quantization=quantization,
                **limits,
            )
        # Not in the catalog: weights and KV bytes from the plan's memory figures (all weights streamed), FLOPs from
        # the weight bytes, 32 layers and no prefill attention term (an assumption, stated).
        quant = QUANT.get(quantization, QUANT["none"])
        weight_bytes = plan.weights_gib * GIB
        kv_per_token = plan.kv_cache_gib * GIB / max(plan.kv_cache_tokens, 1)
        limits.pop("kv_dtype_bytes")
        return cls(
            gpu=plan.gpu_type,
            tensor_parallel=plan.tensor_parallel,
            bandwidth_bps=spec.bandwidth_gbs * 1e9,
            peak_flops=spec.fp16_tflops * 1e12,
            layers=32,
            weight_bytes=weight_bytes,
            flops_per_token=2.0 * weight_bytes / quant.bytes_per_weight,
            attention_flops_per_pair=0.0,
            kv_bytes_per_token=kv_per_token,
            quant=quant,
            **limits,
        )
