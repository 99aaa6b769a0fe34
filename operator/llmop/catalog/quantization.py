"""Quantization catalog: bits per weight, and per engine and version the flag value and GPU floor."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from llmop.catalog.engines import Engine


class Quantization(StrEnum):
    """Engine-independent quantization names used in `spec.quantization`."""

    NONE = "none"
    FP8 = "fp8"
    AWQ = "awq"
    GPTQ = "gptq"
    INT8 = "int8"  # LLM.int8() through bitsandbytes
    NF4 = "nf4"  # bitsandbytes 4-bit NormalFloat
    FP4 = "fp4"  # bitsandbytes 4-bit float


@dataclass(frozen=True)
class EngineRule:
    """One way an engine runs a method: flag value, version range [since, until), GPU floor.

    Rules for a method are tried in order; the first whose version range and compute-capability range
    match is used. `warning`, when set, is shown with an accepted plan (e.g. a weight-only fallback).
    """

    engine: Engine
    flag: str | None
    min_cc: int
    since: str | None = None
    until: str | None = None
    max_cc: int | None = None
    warning: str | None = None
    prequantized: bool = False


@dataclass(frozen=True)
class QuantMethod:
    """One quantization method: storage cost, decode kernel efficiency, and engine rules."""

    name: Quantization
    description: str
    weight_bits: float
    kernel_efficiency: float
    checkpoint_hint: tuple[str, ...]
    rules: tuple[EngineRule, ...]

    @property
    def weight_bytes(self) -> float:
        return self.weight_bits / 8

    def rules_for(self, engine: Engine) -> tuple[EngineRule, ...]:
        return tuple(rule for rule in self.rules if rule.engine == engine)


_BNB_SLOW = "bitsandbytes kernels decode slower than fp16; it saves memory, not latency"
_VLLM_BNB_GONE = "0.28.0"

# Minimum compute capabilities are vLLM's get_min_capability() per release and TGI's server checks
# (engines.md section 5 and 3.3). INT4 bits: 4-bit weights + a group-128 fp16 scale (+0.125) + a packed
# zero point (+0.03) = 4.16 bits (engines.md 7). kernel_efficiency scales the bandwidth a decode step
# reaches relative to bf16: fp8 0.88 is fitted to calibration.md (1.34x/1.46x instead of 2x); the INT4
# Marlin and bitsandbytes figures are estimates from the sources in engines.md 7 and are not measured.
METHODS: dict[Quantization, QuantMethod] = {
    Quantization.NONE: QuantMethod(
        Quantization.NONE,
        "16-bit weights (bf16 where the GPU has it, else fp16)",
        16.0,
        1.0,
        (),
        (
            EngineRule(Engine.VLLM, None, 75),
            EngineRule(Engine.TGI, None, 75),
        ),
    ),
    Quantization.FP8: QuantMethod(
        Quantization.FP8,
        "8-bit float weights (e4m3), quantized on the fly from a 16-bit checkpoint or pre-quantized",
        8.0,
        0.88,
        (),
        (
            EngineRule(Engine.VLLM, "fp8", 89, since=None),
            EngineRule(
                Engine.VLLM,
                "fp8",
                80,
                until="0.20.0",
                max_cc=88,
                warning="no FP8 tensor cores below cc 8.9: vLLM runs weight-only FP8 (Marlin W8A16); "
                "memory and bandwidth are saved, compute stays 16-bit",
            ),
            EngineRule(
                Engine.VLLM,
                "fp8",
                75,
                since="0.20.0",
                max_cc=88,
                warning="no FP8 tensor cores below cc 8.9: vLLM runs weight-only FP8 (Marlin W8A16); "
                "memory and bandwidth are saved, compute stays 16-bit",
            ),
            EngineRule(Engine.TGI, "fp8", 90),
            EngineRule(
                Engine.TGI,
                "fp8",
                80,
                max_cc=89,
                warning="TGI runs FP8-Marlin weight-only (W8A16) below cc 9.0, also on Ada; "
                "memory and bandwidth are saved, compute stays 16-bit",
            ),
        ),
    ),
    Quantization.AWQ: QuantMethod(
        Quantization.AWQ,
        "4-bit AWQ weights (pre-quantized checkpoint)",
        4.16,
        0.8,
        ("awq",),
        (
            EngineRule(Engine.VLLM, "awq_marlin", 75, since="0.20.0", prequantized=True),
            EngineRule(Engine.VLLM, "awq_marlin", 80, until="0.20.0", prequantized=True),
            EngineRule(
                Engine.VLLM,
                "awq",
                75,
                until="0.20.0",
                max_cc=79,
                prequantized=True,
                warning="vLLM before 0.20 has no Marlin kernel below cc 8.0; the plain AWQ kernel is slower",
            ),
            EngineRule(Engine.TGI, "awq", 80, prequantized=True),
        ),
    ),
    Quantization.GPTQ: QuantMethod(
        Quantization.GPTQ,
        "4-bit GPTQ weights (pre-quantized checkpoint)",
        4.16,
        0.8,
        ("gptq",),
        (
            EngineRule(Engine.VLLM, "gptq_marlin", 75, since="0.20.0", prequantized=True),
            EngineRule(Engine.VLLM, "gptq_marlin", 80, until="0.20.0", prequantized=True),
            EngineRule(
                Engine.VLLM,
                "gptq",
                75,
                until="0.20.0",
                max_cc=79,
                prequantized=True,
                warning="vLLM before 0.20 has no Marlin kernel below cc 8.0; the Exllama GPTQ kernel is slower",
            ),
            EngineRule(Engine.TGI, "gptq", 80, prequantized=True),
        ),
    ),
    Quantization.INT8: QuantMethod(
        Quantization.INT8,
        "LLM.int8() 8-bit weights through bitsandbytes",
        8.0,
        0.35,
        ("bnb", "bitsandbytes", "8bit", "int8"),
        (
            EngineRule(
                Engine.VLLM,
                "bitsandbytes",
                75,
                until=_VLLM_BNB_GONE,
                prequantized=True,
                warning="vLLM loads only pre-quantized bitsandbytes 8-bit checkpoints; " + _BNB_SLOW,
            ),
            EngineRule(Engine.TGI, "bitsandbytes", 75, warning=_BNB_SLOW + "; TGI suggests eetq instead"),
        ),
    ),
    Quantization.NF4: QuantMethod(
        Quantization.NF4,
        "4-bit NormalFloat weights through bitsandbytes, quantized on load",
        4.5,
        0.3,
        (),
        (
            EngineRule(Engine.VLLM, "bitsandbytes", 75, until=_VLLM_BNB_GONE, warning=_BNB_SLOW),
            EngineRule(Engine.TGI, "bitsandbytes-nf4", 75, warning=_BNB_SLOW),
        ),
    ),
    Quantization.FP4: QuantMethod(
        Quantization.FP4,
        "4-bit float weights through bitsandbytes, quantized on load",
        4.5,
        0.3,
        (),
        (EngineRule(Engine.TGI, "bitsandbytes-fp4", 75, warning=_BNB_SLOW),),
    ),
}
