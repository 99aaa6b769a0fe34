"""Planner results: an accepted Plan, or PlanErrors naming each refused field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmop.catalog.engines import Engine
from llmop.plan.latency import DecodeModel


@dataclass(frozen=True)
class Finding:
    """One error or warning about a field of the spec (dotted path, e.g. `spec.gpu.count`)."""

    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class PlanErrors:
    """The spec cannot work; nothing may be deployed for it."""

    errors: tuple[Finding, ...]
    warnings: tuple[Finding, ...] = ()
    # the Planned condition's reason: PlanRefused, or why the hub could not give the model's config.json
    # (ModelGated, ModelNotFound, ModelConfigNotFound, ModelConfigUnavailable, ModelConfigUnsupported,
    # TokenSecretUnavailable) when that is what stopped the plan
    reason: str = "PlanRefused"

    @property
    def summary(self) -> str:
        return "; ".join(str(error) for error in self.errors)


@dataclass(frozen=True)
class Plan:
    """Everything the renderer needs, decided and explained."""

    name: str
    engine: Engine
    engine_version: str
    image: str
    gpu_type: str
    tensor_parallel: int
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: dict[str, str]
    dtype: str
    attention_backend: str
    quantization: str
    quantization_flag: str | None
    model_name: str
    model_revision: str | None
    token_secret: tuple[str, str] | None
    max_model_len: int
    port: int
    health_path: str
    metrics_path: str
    node_selector: dict[str, str]
    weights_gib: float
    kv_cache_gib: float
    kv_cache_tokens: int
    memory_per_gpu_gib: float
    decode_floor_ms: float
    step_ms_at_target_concurrency: float | None
    max_concurrency_at_slo: int | None
    slo_target_ms: float | None
    min_replicas: int
    max_replicas: int
    startup_seconds: int
    decode_model: DecodeModel
    mean_context_tokens: float
    warnings: tuple[Finding, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The `plan` object of `llmop plan --json`."""
        return {
            "engine": self.engine.value,
            "engineVersion": self.engine_version,
            "image": self.image,
            "gpuType": self.gpu_type,
            "tensorParallel": self.tensor_parallel,
            "gpusPerReplica": self.tensor_parallel,
            "command": list(self.command),
            "args": list(self.args),
            "env": dict(self.env),
            "dtype": self.dtype,
            "attentionBackend": self.attention_backend,
            "quantization": self.quantization,
            "quantizationFlag": self.quantization_flag,
            "weightsGiB": round(self.weights_gib, 2),
            "kvCacheGiB": round(self.kv_cache_gib, 2),
            "kvCacheTokens": self.kv_cache_tokens,
            "memoryPerGpuGiB": round(self.memory_per_gpu_gib, 2),
            "decodeFloorMs": round(self.decode_floor_ms, 2),
            "maxConcurrencyAtSlo": self.max_concurrency_at_slo,
            "sloTargetMs": self.slo_target_ms,
            "startupSeconds": self.startup_seconds,
            "nodeSelector": dict(self.node_selector),
        }
