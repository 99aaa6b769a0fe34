"""What would make a candidate fit in memory: the longest maxModelLen it holds, or how far its weights are over."""

from __future__ import annotations

from llmop.api.spec import LLMDeploymentSpec
from llmop.catalog.engines import ENGINES
from llmop.catalog.gpus import GPUS
from llmop.catalog.quantization import METHODS, Quantization
from llmop.catalog.versions import parse_version
from llmop.engines import adapter
from llmop.plan.memory import GIB, fit
from llmop.plan.planner import resolve_architecture
from llmop.plan.types import Finding


def memory_fix(spec: LLMDeploymentSpec, tensor_parallel: int) -> tuple[str, str]:
    """(reason, fix) for a concrete spec whose weights plus one maxModelLen sequence do not fit `tensor_parallel`
    GPUs: lower maxModelLen to what the KV cache holds, or, when the weights alone do not fit, say by how much."""
    gpu = GPUS[spec.gpu.type]
    architecture = resolve_architecture(spec)
    if isinstance(architecture, Finding):
        return architecture.message, ""
    version = parse_version((spec.engine_version or ENGINES[spec.engine].pinned_version).lstrip("v"))
    utilization = adapter(spec.engine).memory_fraction(version)
    memory = fit(architecture, METHODS[Quantization(spec.quantization)], gpu, utilization, tensor_parallel)
    weights = memory.weight_bytes / GIB
    where = f"{tensor_parallel} x {gpu.name}"
    if memory.kv_tokens >= 128:
        reason = (
            f"{weights:.1f} GiB of weights leave KV cache for {memory.kv_tokens} tokens on {where}, "
            f"less than one {spec.max_model_len}-token sequence"
        )
        return reason, f"lower spec.maxModelLen to {memory.kv_tokens} or less"
    room = (memory.usable_bytes_per_gpu - memory.overhead_bytes_per_gpu) * tensor_parallel / GIB
    reason = f"{weights:.1f} GiB of weights do not fit the {room:.1f} GiB left on {where}"
    return reason, f"{weights - room + 0.1:.1f} GiB more GPU memory, more GPUs per replica or a 4-bit quantization"
