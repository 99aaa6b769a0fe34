"""Measured decode-step times (../shared/reference/calibration.md) that the latency model is fitted to."""

from __future__ import annotations

from dataclasses import dataclass

# Measured 2026-11-26, PyTorch 2.11 / CUDA 13.0, CUDA graphs, Llama-3-8B shapes with random weights
# (13.98 GiB bf16), one run each. Units: milliseconds per decode step.


@dataclass(frozen=True)
class StepSample:
    gpu: str
    batch: int
    context: int
    step_ms: float
    weights: str = "bf16"


CALIBRATION_MODEL = "llama-3-8b"

SAMPLES: tuple[StepSample, ...] = (
    # weights only (no KV read)
    StepSample("H100-80GB", 1, 0, 5.77),
    StepSample("H100-80GB", 8, 0, 5.92),
    StepSample("H100-80GB", 32, 0, 5.93),
    StepSample("H100-80GB", 128, 0, 6.64),
    StepSample("H200", 1, 0, 4.22),
    StepSample("H200", 8, 0, 4.36),
    StepSample("H200", 32, 0, 4.48),
    StepSample("H200", 128, 0, 6.11),
    # bf16 + KV cache
    StepSample("H100-80GB", 1, 4096, 6.23),
    StepSample("H100-80GB", 32, 4096, 11.63),
    StepSample("H100-80GB", 64, 8192, 28.35),
    StepSample("H200", 1, 4096, 4.60),
    StepSample("H200", 32, 4096, 8.36),
    StepSample("H200", 64, 8192, 19.59),
    # the capacity curve
    *(
        StepSample("H100-80GB", b, 1024, ms)
        for b, ms in ((1, 6.03), (4, 6.23), (16, 6.81), (32, 7.49), (64, 9.03), (128, 12.40), (256, 19.08))
    ),
    *(StepSample("H100-80GB", b, 4096, ms) for b, ms in ((4, 6.75), (16, 8.85), (64, 17.29))),
    *(
        StepSample("H200", b, 1024, ms)
        for b, ms in ((1, 4.46), (4, 4.73), (16, 5.06), (32, 5.61), (64, 6.68), (128, 10.07), (256, 14.59))
    ),
    *(StepSample("H200", b, 4096, ms) for b, ms in ((4, 5.07), (16, 6.44), (64, 12.16), (128, 21.16))),
    # fp8 e4m3 weights (per-tensor scale, torch._scaled_mm), no KV
    StepSample("H100-80GB", 16, 0, 3.96, "fp8"),
    StepSample("H100-80GB", 32, 0, 3.95, "fp8"),
    StepSample("H100-80GB", 128, 0, 4.50, "fp8"),
    StepSample("H200", 16, 0, 3.16, "fp8"),
    StepSample("H200", 32, 0, 3.06, "fp8"),
    StepSample("H200", 128, 0, 3.61, "fp8"),
)
