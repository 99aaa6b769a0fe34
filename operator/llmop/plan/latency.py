"""The decode-latency model: step time from bytes streamed through HBM, fitted to measured H100/H200 steps."""

from __future__ import annotations

from dataclasses import dataclass

from llmop.catalog.gpus import GPU

# Fitted to catalog/calibration.py (41 measured steps, Llama-3-8B shapes on H100 and H200): mean error
# 3.3 %, worst 14 % (tests/unit/test_latency.py holds the model to those bounds).
ETA_WEIGHTS = 0.81  # fraction of spec bandwidth a weight-streaming step reaches
ETA_KV = 0.94  # fraction reached while reading the KV cache (large, contiguous reads)
COMPUTE_FACTOR = 0.5  # per-sequence GEMM time, as a share of flops / peak fp16 tensor throughput
STEP_OVERHEAD_MS = 0.1  # launch and sampling overhead per step (CUDA graphs)
# Tensor parallelism adds two all-reduces per layer per step; an estimate, not measured here.
ALLREDUCE_MS_NVLINK = 0.012
ALLREDUCE_MS_PCIE = 0.04
_PCIE_GPUS = frozenset({"T4", "A10G", "L4", "L40S", "H100-PCIe"})


@dataclass(frozen=True)
class DecodeModel:
    """Per-replica decode cost: what one step streams and computes, split over `tensor_parallel` GPUs."""

    gpu: GPU
    weight_bytes: float
    kv_bytes_per_token: float
    flops_per_token: float
    layers: int
    tensor_parallel: int
    kernel_efficiency: float = 1.0

    def step_ms(self, batch: int, context: float) -> float:
        """Time of one decode step for `batch` sequences each holding `context` tokens of KV cache."""
        bandwidth = self.gpu.bandwidth_gbs * 1e9
        tp = self.tensor_parallel
        weights = self.weight_bytes / tp / (bandwidth * ETA_WEIGHTS * self.kernel_efficiency)
        kv = batch * context * self.kv_bytes_per_token / tp / (bandwidth * ETA_KV)
        compute = batch * self.flops_per_token / tp / (self.gpu.fp16_tflops * 1e12) * COMPUTE_FACTOR
        return (weights + kv + compute) * 1e3 + STEP_OVERHEAD_MS + self.communication_ms()

    def communication_ms(self) -> float:
        if self.tensor_parallel == 1:
            return 0.0
        per_allreduce = ALLREDUCE_MS_PCIE if self.gpu.name in _PCIE_GPUS else ALLREDUCE_MS_NVLINK
        return 2 * self.layers * per_allreduce

    def floor_ms(self) -> float:
        """The fastest a token can come: one sequence, an empty context."""
        return self.step_ms(1, 0)

    def max_batch_within(self, target_ms: float, context: float, limit: int) -> int:
        """Largest batch (<= limit) whose step time at `context` stays within `target_ms`; 0 if none."""
        if self.step_ms(1, context) > target_ms:
            return 0
        low, high = 1, max(limit, 1)
        if self.step_ms(high, context) <= target_ms:
            return high
        while high - low > 1:
            middle = (low + high) // 2
            if self.step_ms(middle, context) <= target_ms:
                low = middle
            else:
                high = middle
        return low
