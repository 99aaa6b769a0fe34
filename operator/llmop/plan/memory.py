"""Memory fit: weights after quantization, KV cache per token, runtime overhead, against GPU memory."""

from __future__ import annotations

from dataclasses import dataclass

from llmop.catalog.gpus import GPU
from llmop.catalog.models import Architecture
from llmop.catalog.quantization import QuantMethod

GIB = 1024**3
# Activations, CUDA graphs, the sampler and the CUDA context per GPU; NCCL buffers when sharded.
# Estimates in line with vLLM's profiling run on 7-8B models; not measured here.
RUNTIME_OVERHEAD_GIB = 1.5
TP_OVERHEAD_GIB = 0.5
# `gpu.count: auto` wants room for this many full-length sequences, so a replica has real concurrency.
AUTO_MIN_SEQUENCES = 4
TP_CHOICES = (1, 2, 4, 8)


@dataclass(frozen=True)
class MemoryFit:
    """How one replica's memory splits at a given tensor-parallel size."""

    tensor_parallel: int
    weight_bytes: float
    usable_bytes_per_gpu: float
    overhead_bytes_per_gpu: float
    kv_bytes_per_token: int

    @property
    def kv_budget_bytes(self) -> float:
        """KV-cache room over all shards of the replica (negative when weights do not fit)."""
        per_gpu = self.usable_bytes_per_gpu - self.overhead_bytes_per_gpu - self.weight_bytes / self.tensor_parallel
        return per_gpu * self.tensor_parallel

    @property
    def kv_tokens(self) -> int:
        return max(int(self.kv_budget_bytes // self.kv_bytes_per_token), 0)

    @property
    def weights_fit(self) -> bool:
        return self.kv_budget_bytes > 0

    def sequences(self, max_model_len: int) -> float:
        return self.kv_tokens / max_model_len


def weight_bytes(architecture: Architecture, method: QuantMethod) -> float:
    """Quantized linear weights plus 16-bit embeddings and lm_head."""
    return architecture.quantizable_parameters * method.weight_bytes + architecture.embedding_parameters * 2


def fit(
    architecture: Architecture, method: QuantMethod, gpu: GPU, utilization: float, tensor_parallel: int
) -> MemoryFit:
    overhead = RUNTIME_OVERHEAD_GIB + (TP_OVERHEAD_GIB if tensor_parallel > 1 else 0.0)
    return MemoryFit(
        tensor_parallel=tensor_parallel,
        weight_bytes=weight_bytes(architecture, method),
        usable_bytes_per_gpu=gpu.memory_mib * 1024**2 * utilization,
        overhead_bytes_per_gpu=overhead * GIB,
        kv_bytes_per_token=architecture.kv_bytes_per_token(),
    )


def tp_divides_heads(architecture: Architecture, tensor_parallel: int) -> bool:
    """vLLM/TGI shard attention heads evenly; KV heads are split or replicated evenly."""
    if architecture.attention_heads % tensor_parallel:
        return False
    kv = architecture.kv_heads
    return kv % tensor_parallel == 0 or tensor_parallel % kv == 0
