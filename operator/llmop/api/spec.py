"""The LLMDeployment spec (llmop.io/v1alpha1) as pydantic models; the CRD schema is generated from them."""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator
from pydantic.alias_generators import to_camel

from llmop.catalog.engines import Engine
from llmop.catalog.gpus import GPUS
from llmop.catalog.quantization import Quantization

GROUP = "llmop.io"
VERSION = "v1alpha1"
KIND = "LLMDeployment"
PLURAL = "llmdeployments"
SINGULAR = "llmdeployment"
SHORT_NAMES = ("llmd",)
API_VERSION = f"{GROUP}/{VERSION}"

DURATION_PATTERN = r"^([0-9]+(ms|s|m|h))+$"
# What the API server accepts in an env var's secretKeyRef: a Secret name (RFC 1123 subdomain) and a data key.
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
# Unicode categories refused in engineArgs: controls (C0 and C1, e.g. newline, NEL), invisible format characters
# (bidi overrides, zero-width), line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

# `gpu.type: auto` and `quantization: auto` let llmop choose (sizing/choose.py): the cheapest schedulable candidate.
AUTO = "auto"

if TYPE_CHECKING:
    GpuType = str
    CatalogGpuType = str
else:
    CatalogGpuType = Literal[tuple(GPUS)]  # the catalog's names, so the CRD lists them as an enum
    GpuType = Literal[(*GPUS, AUTO)]

QuantizationChoice = Annotated[
    Quantization | Literal["auto"],
    WithJsonSchema({"type": "string", "enum": [*(q.value for q in Quantization), AUTO]}),
]


def duration_seconds(text: str) -> float:
    """Parse a Go-style duration such as `2m`, `30s`, `1h30m` into seconds."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration like 30s, 2m or 1h")
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def _cel(rule: str, message: str) -> dict[str, Any]:
    return {"rule": rule, "message": message}


class ApiModel(BaseModel):
    """Base: camelCase on the wire, unknown fields refused, values validated on assignment."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", validate_assignment=True)


class SecretKeyRef(ApiModel):
    """A key of a Secret in the LLMDeployment's namespace."""

    name: Annotated[str, Field(min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN, description="Secret name.")]
    key: Annotated[
        str, Field(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN, description="Key within the Secret.")
    ] = "token"


class ArchitectureSpec(ApiModel):
    """Explicit model architecture for models that are not in llmop's catalog."""

    parameters: Annotated[int, Field(ge=1_000_000, le=10_000_000_000_000, description="Total parameters.")]
    layers: Annotated[int, Field(ge=1, le=1024)]
    hidden_size: Annotated[int, Field(ge=64, le=131_072)]
    attention_heads: Annotated[int, Field(ge=1, le=1024)]
    kv_heads: Annotated[int, Field(ge=1, le=1024)]
    head_dim: Annotated[int, Field(ge=8, le=1024)]
    vocab_size: Annotated[int, Field(ge=1, le=10_000_000)]
    max_position_embeddings: Annotated[int, Field(ge=128, le=100_000_000)]
    tied_embeddings: bool = False


class ModelSpec(ApiModel):
    """The model to serve."""

    name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=256,
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$",
            description="Hugging Face hub id (org/Model-Name) or a path in the model cache volume.",
        ),
    ]
    revision: Annotated[
        str | None,
        Field(max_length=128, pattern=r"^[A-Za-z0-9._/-]+$", description="Hub revision (branch, tag, commit)."),
    ] = None
    architecture: Annotated[
        str | ArchitectureSpec | None,
        Field(
            description="A catalog key (e.g. llama-3.1-8b) or explicit numbers; required for models "
            "that are not in the catalog.",
            json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
        ),
    ] = None
    token_secret_ref: Annotated[
        SecretKeyRef | None, Field(description="Secret holding a Hugging Face token (HF_TOKEN).")
    ] = None


class GpuSpec(ApiModel):
    """GPU type and GPUs per replica."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel("self.type == 'auto' || !has(self.candidates)", "gpu.candidates needs gpu.type auto")
            ]
        }
    )

    type: Annotated[
        GpuType,
        Field(description="Catalog GPU type (maps to GFD node labels), or auto: the cheapest schedulable candidate."),
    ]
    count: Annotated[
        Literal["auto"] | Annotated[int, Field(ge=1, le=8)],
        Field(
            description="GPUs per replica (tensor-parallel size), or auto for the smallest that fits.",
            json_schema_extra={
                "x-kubernetes-int-or-string": True,
                "x-kubernetes-validations": [
                    _cel(
                        "type(self) == string ? self == 'auto' : (self >= 1 && self <= 8)",
                        "count must be auto or an integer from 1 to 8",
                    )
                ],
            },
        ),
    ] = "auto"
    candidates: Annotated[
        list[CatalogGpuType] | None,
        Field(
            min_length=1,
            max_length=len(GPUS),
            description="With type auto: the GPU types to choose from (default: every catalog type).",
        ),
    ] = None

    @model_validator(mode="after")
    def _candidates_need_auto(self) -> GpuSpec:
        if self.candidates is not None and self.type != AUTO:
            raise ValueError("gpu.candidates needs gpu.type auto")
        return self


class ReplicasSpec(ApiModel):
    """Replica bounds for the autoscaler; with autoscaling disabled, min is the replica count."""

    min: Annotated[
        int,
        Field(
            ge=0,
            le=1000,
            description="The autoscaler's floor; with autoscaling disabled, the replica count. The scale "
            "subresource's spec.replicas (kubectl scale, an HPA) reads and writes this field.",
        ),
    ] = 1
    max: Annotated[int, Field(ge=1, le=1000, description="The autoscaler's ceiling (unused when it is disabled).")] = 1


class DecodeLatencySLO(ApiModel):
    """Per-token decode latency (TPOT / inter-token latency) objective."""

    percentile: Annotated[Literal[50, 90, 95, 99], Field(description="Percentile of TPOT to hold.")] = 95
    target_ms: Annotated[float, Field(gt=0, le=60_000, description="Target TPOT in milliseconds.")]
    window: Annotated[
        str, Field(pattern=DURATION_PATTERN, max_length=16, description="Evaluation window, e.g. 2m.")
    ] = "2m"

    @property
    def window_s(self) -> float:
        return duration_seconds(self.window)


class TimeToFirstTokenSLO(ApiModel):
    """Time-to-first-token objective: queueing and prefill, what a user waits before the stream starts."""

    percentile: Annotated[Literal[50, 90, 95, 99], Field(description="Percentile of TTFT to hold.")] = 95
    target_ms: Annotated[float, Field(gt=0, le=600_000, description="Target TTFT in milliseconds.")]


class SLOSpec(ApiModel):
    decode_latency: DecodeLatencySLO | None = None
    time_to_first_token: Annotated[
        TimeToFirstTokenSLO | None,
        Field(
            description=(
                "Optional. When set, the autoscaler also scales up while the TTFT percentile over the decode "
                "latency window is above its target (a queue is the first sign of a spike)."
            )
        ),
    ] = None


class ProbeSpec(ApiModel):
    """Active probe: with too few tokens in the SLO window to judge (no traffic), time a short generation."""

    enabled: Annotated[
        bool, Field(description="Probe the engine when Prometheus has too few samples to judge the latency.")
    ]
    endpoint: Annotated[
        str | None,
        Field(
            max_length=512,
            pattern=r"^https?://",
            description=(
                "Engine base URL to probe; defaults to the deployment's Service (http://NAME.NAMESPACE.svc:PORT). "
                "Another URL is probed only when the operator allows custom probe endpoints."
            ),
        ),
    ] = None
    interval: Annotated[
        str, Field(pattern=DURATION_PATTERN, max_length=16, description="Reuse a probe's result for this long.")
    ] = "30s"

    @property
    def interval_s(self) -> float:
        return duration_seconds(self.interval)


class AutoscalingSpec(ApiModel):
    """Scaling behaviour."""

    enabled: bool = True
    scale_up_stabilization: Annotated[str, Field(pattern=DURATION_PATTERN, max_length=16)] = "30s"
    scale_down_stabilization: Annotated[
        str,
        Field(
            pattern=DURATION_PATTERN,
            max_length=16,
            description="How long the load must fit one replica fewer before the first scale-in step.",
        ),
    ] = "2m"
    prometheus_url: Annotated[
        str | None,
        Field(
            max_length=512,
            pattern=r"^https?://",
            description=(
                "Prometheus base URL for this deployment; defaults to the operator's setting. Queried only when it "
                "is the operator's own URL or under one of the operator's allowed prefixes."
            ),
        ),
    ] = None
    probe: Annotated[
        ProbeSpec | None,
        Field(description="Active probe fallback for a deployment without traffic to read latency from (opt-in)."),
    ] = None

    @property
    def scale_up_s(self) -> float:
        return duration_seconds(self.scale_up_stabilization)

    @property
    def scale_down_s(self) -> float:
        return duration_seconds(self.scale_down_stabilization)


REPLICAS_RULE = (
    "!has(self.replicas) || self.replicas.min <= self.replicas.max"
    " || (has(self.autoscaling) && has(self.autoscaling.enabled) && !self.autoscaling.enabled)"
)


class ExpectedLoad(ApiModel):
    """The traffic `gpu.type: auto` / `quantization: auto` size for: the cheapest at this load wins."""

    requests_per_second: Annotated[float, Field(gt=0, le=1_000_000, description="Mean requests per second.")]
    prompt_tokens: Annotated[int, Field(ge=1, le=10_000_000, description="Mean prompt length in tokens.")] = 1024
    output_tokens: Annotated[int, Field(ge=1, le=10_000_000, description="Mean output length in tokens.")] = 256


class LLMDeploymentSpec(ApiModel):
    """Desired state of an LLMDeployment."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "self.quantization == 'auto' || !has(self.quantizationCandidates)",
                    "quantizationCandidates needs quantization auto",
                ),
                {
                    **_cel(REPLICAS_RULE, "replicas.min must be <= replicas.max while autoscaling is enabled"),
                    "fieldPath": ".replicas",
                },
            ]
        }
    )

    model: ModelSpec
    engine: Engine = Engine.VLLM
    engine_version: Annotated[
        str | None,
        Field(
            pattern=r"^v?[0-9]+\.[0-9]+(\.[0-9]+)?$",
            max_length=32,
            description="Engine release; defaults to llmop's pinned version for the engine.",
        ),
    ] = None
    quantization: Annotated[
        QuantizationChoice,
        Field(description="Quantization method, or auto: the cheapest of quantizationCandidates."),
    ] = Quantization.NONE
    quantization_candidates: Annotated[
        list[Quantization] | None,
        Field(
            min_length=1,
            max_length=len(Quantization),
            description="With quantization auto: the methods to choose from (default: none and fp8, plus awq/gptq "
            "when the model name is such a checkpoint).",
        ),
    ] = None
    gpu: GpuSpec
    expected_load: Annotated[
        ExpectedLoad | None,
        Field(
            description="With gpu.type or quantization auto: the load to size for (replicas x GPUs x price per "
            "GPU-hour, cheapest first); without it each candidate is sized as gpu.count auto sizes it and ranked "
            "by cost per output token at its SLO capacity."
        ),
    ] = None
    max_model_len: Annotated[
        int, Field(ge=128, le=10_000_000, description="Longest sequence (prompt + output) in tokens.")
    ] = 8192
    replicas: ReplicasSpec = Field(default_factory=ReplicasSpec)
    slo: SLOSpec = Field(default_factory=SLOSpec)
    autoscaling: AutoscalingSpec = Field(default_factory=AutoscalingSpec)
    engine_args: Annotated[
        list[Annotated[str, Field(max_length=1024)]],
        Field(max_length=64, description="Extra engine flags; operator-owned flags are refused."),
    ] = Field(default_factory=list)

    @model_validator(mode="after")
    def _quantization_candidates_need_auto(self) -> LLMDeploymentSpec:
        if self.quantization_candidates is not None and self.quantization != AUTO:
            raise ValueError("quantizationCandidates needs quantization auto")
        return self

    @field_validator("engine_args")
    @classmethod
    def _no_control_characters(cls, values: list[str]) -> list[str]:
        for index, value in enumerate(values):
            bad = next((ch for ch in value if unicodedata.category(ch) in _REFUSED_CATEGORIES), None)
            if bad is not None:
                raise ValueError(
                    f"engineArgs[{index}] contains a control character or an invisible one (U+{ord(bad):04X}: "
                    "newline, tab, NEL, bidi override, zero-width, ...)"
                )
        return values
