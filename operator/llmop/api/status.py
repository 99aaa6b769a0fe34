"""The LLMDeployment status as pydantic models, and Kubernetes-style conditions."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

from llmop.api.spec import ApiModel
from llmop.api.times import rfc3339


class Phase(StrEnum):
    PENDING = "Pending"
    DEPLOYING = "Deploying"
    LOADING = "Loading"
    READY = "Ready"
    DEGRADED = "Degraded"
    FAILED = "Failed"


class ConditionType(StrEnum):
    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    PLANNED = "Planned"
    AVAILABLE = "Available"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    SLO_MET = "SLOMet"
    METRICS_AVAILABLE = "MetricsAvailable"


def now_rfc3339() -> str:
    """Now, as a Kubernetes Time (whole seconds)."""
    return rfc3339()


class Condition(ApiModel):
    """A condition as the Kubernetes API conventions define it."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: Annotated[str, Field(max_length=1024)]
    message: Annotated[str, Field(max_length=32768)] = ""
    last_transition_time: str
    observed_generation: int | None = None


class PlanStatus(ApiModel):
    """Summary of the accepted plan."""

    engine: str
    engine_version: str
    image: str
    gpu_type: str
    tensor_parallel: int
    attention_backend: str
    dtype: str
    quantization_flag: str | None = None
    weights_gib: Annotated[float, Field(alias="weightsGiB")]
    kv_cache_gib: Annotated[float, Field(alias="kvCacheGiB")]
    decode_floor_ms: float
    max_concurrency_at_slo: int | None = None
    warnings: list[str] = Field(default_factory=list)


class GpuOptionStatus(ApiModel):
    """One candidate of a `gpu.type: auto` / `quantization: auto` choice."""

    gpu_type: str
    quantization: str
    tensor_parallel: int
    engine: str
    usd_per_million_tokens: float
    replicas: int | None = None  # at spec.expectedLoad


class GpuChoiceStatus(GpuOptionStatus):
    """The `auto` choice, remembered: reused while specHash (the spec fields it depends on) is unchanged."""

    runner_up: GpuOptionStatus | None = None
    spec_hash: str
    price_source: str
    message: Annotated[str, Field(max_length=4096)] = ""


class DecodeLatencyStatus(ApiModel):
    p95_ms: float | None = None
    percentile: int | None = None
    observed_ms: float | None = None
    observed_at: str | None = None


class LastScale(ApiModel):
    at: str
    from_: Annotated[int, Field(alias="from")]
    to: int
    reason: str


class EndpointStatus(ApiModel):
    """Where to send requests: the engine's Service inside the cluster and its OpenAI-compatible base URL."""

    service: str
    port: int
    url: Annotated[str, Field(description="The Service URL through cluster DNS, e.g. http://NAME.NAMESPACE.svc:8000.")]
    openai_base_url: Annotated[
        str, Field(alias="openAIBaseURL", description="OpenAI-compatible API base (url + /v1), for OpenAI clients.")
    ]


class LLMDeploymentStatus(ApiModel):
    """Observed state of an LLMDeployment."""

    phase: Phase | None = None
    conditions: Annotated[
        list[Condition],
        Field(json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}),
    ] = Field(default_factory=list)
    plan: PlanStatus | None = None
    replicas: int | None = None
    ready_replicas: int | None = None
    desired_replicas: int | None = None
    decode_latency: DecodeLatencyStatus | None = None
    last_scale: LastScale | None = None
    observed_generation: int | None = None
    deployment_name: str | None = None
    gpu_choice: Annotated[
        GpuChoiceStatus | None,
        Field(description="What gpu.type/quantization auto chose, and the runner-up; kept until the spec changes."),
    ] = None
    selector: Annotated[
        str | None, Field(description="Label selector of the engine pods (the scale subresource's, for an HPA).")
    ] = None
    endpoint: EndpointStatus | None = None
    autoscaler: Annotated[
        dict[str, Any] | None,
        Field(
            description="Autoscaler memory (stabilization windows), so a restarted operator resumes without a jump.",
            json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
        ),
    ] = None


def set_condition(
    conditions: list[dict[str, Any]],
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int | None,
    now: str | None = None,
) -> list[dict[str, Any]]:
    """Return conditions with `type_` set; lastTransitionTime moves only when the status changes."""
    text = "Unknown" if status is None else ("True" if status else "False")
    stamp = now or now_rfc3339()
    updated: list[dict[str, Any]] = []
    found = False
    for condition in conditions:
        if condition.get("type") != type_:
            updated.append(condition)
            continue
        found = True
        transition = condition.get("lastTransitionTime", stamp) if condition.get("status") == text else stamp
        updated.append(_condition(type_, text, reason, message, transition, generation))
    if not found:
        updated.append(_condition(type_, text, reason, message, stamp, generation))
    return updated


def _condition(type_: str, status: str, reason: str, message: str, at: str, generation: int | None) -> dict[str, Any]:
    condition: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message[:32768],
        "lastTransitionTime": at,
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    return condition


def get_condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)
