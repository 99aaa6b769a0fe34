"""`gpu.type: auto` / `quantization: auto`: the cheapest candidate the cluster can schedule, remembered. Pure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmop.api.spec import AUTO, LLMDeploymentSpec
from llmop.catalog.engines import DEFAULT_IMAGE_REGISTRY, Engine
from llmop.catalog.gpus import GPUS
from llmop.catalog.hf_config import CheckpointLookup, HubFailure
from llmop.catalog.prices import DEFAULT_PRICES, PriceTable
from llmop.catalog.quantization import METHODS, Quantization
from llmop.plan.checkpoint import hub_architecture
from llmop.plan.memory import AUTO_MIN_SEQUENCES
from llmop.plan.planner import plan
from llmop.plan.types import Finding, Plan, PlanErrors
from llmop.sizing.compare import Candidate, Comparison, Option, Workload, candidate_spec, compare

# Without quantizationCandidates, `quantization: auto` keeps to the methods near 16-bit quality (catalog/quality.py)
# plus the 4-bit method whose checkpoint the model name names: it never trades accuracy for cost unasked.
DEFAULT_AUTO_QUANTIZATIONS = (Quantization.NONE, Quantization.FP8)
# The inputs of the choice: a change to any of them is a spec change that may choose again; others never do.
CHOICE_FIELDS = {"model", "engine", "engine_version", "quantization", "quantization_candidates", "gpu"} | {
    "max_model_len",
    "slo",
    "engine_args",
    "expected_load",
}


def is_auto(spec: LLMDeploymentSpec) -> bool:
    return spec.gpu.type == AUTO or spec.quantization == AUTO


def fingerprint(spec: LLMDeploymentSpec) -> str:
    """A digest of the spec fields the choice depends on (status.gpuChoice.specHash)."""
    data = spec.model_dump(mode="json", by_alias=True, include=CHOICE_FIELDS)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def candidate_gpus(spec: LLMDeploymentSpec) -> list[str]:
    if spec.gpu.type != AUTO:
        return [spec.gpu.type]
    return list(dict.fromkeys(spec.gpu.candidates)) if spec.gpu.candidates else list(GPUS)


def candidate_quantizations(spec: LLMDeploymentSpec) -> list[Quantization]:
    if isinstance(spec.quantization, Quantization):
        return [spec.quantization]
    if spec.quantization_candidates:
        return list(dict.fromkeys(spec.quantization_candidates))
    lowered = spec.model.name.lower()
    named = [q for q in (Quantization.AWQ, Quantization.GPTQ) if any(h in lowered for h in METHODS[q].checkpoint_hint)]
    return named or list(DEFAULT_AUTO_QUANTIZATIONS)


@dataclass(frozen=True)
class GpuChoice:
    """What `auto` chose and the runner-up, for status.gpuChoice and the GPUChosen Event."""

    chosen: Option
    runner_up: Option | None
    spec_hash: str
    considered: int
    prices: PriceTable

    def message(self) -> str:
        text = f"chose {_describe(self.chosen)}"
        if self.runner_up is not None:
            text += f"; runner-up {_describe(self.runner_up)}"
        return f"{text} ({self.considered} candidates; prices: {self.prices.describe()})"

    def to_status(self) -> dict[str, Any]:
        status = {
            **_summary(self.chosen),
            "specHash": self.spec_hash,
            "priceSource": self.prices.describe(),
            "message": self.message(),
        }
        if self.runner_up is not None:
            status["runnerUp"] = _summary(self.runner_up)
        return status


def _describe(option: Option) -> str:
    if option.replicas is not None and option.usd_per_hour is not None:
        return (
            f"{option.candidate.label} x {option.replicas} replica{'s' if option.replicas != 1 else ''} at "
            f"${option.usd_per_hour:.2f}/h, "
            f"${option.usd_per_million_tokens:.2f} per million output tokens"
        )
    return (
        f"{option.candidate.label} at ${option.usd_per_million_tokens:.2f} per million output tokens "
        f"(${option.usd_per_replica_hour:.2f}/h per replica)"
    )


def _summary(option: Option) -> dict[str, Any]:
    return {
        "gpuType": option.candidate.gpu,
        "quantization": option.candidate.quantization.value,
        "tensorParallel": option.candidate.tensor_parallel,
        "engine": option.candidate.engine.value,
        "usdPerMillionTokens": round(option.usd_per_million_tokens, 4),
        **({"replicas": option.replicas} if option.replicas is not None else {}),
    }


@dataclass(frozen=True)
class Chosen:
    """The plan for an auto spec, and the new choice (None when a remembered one was reused)."""

    result: Plan | PlanErrors
    choice: GpuChoice | None = None


def remembered(spec: LLMDeploymentSpec, status: Mapping[str, Any] | None) -> Candidate | None:
    """The choice recorded in status for this very spec (same specHash), or None."""
    recorded = (status or {}).get("gpuChoice")
    if not isinstance(recorded, dict) or recorded.get("specHash") != fingerprint(spec):
        return None
    try:
        candidate = Candidate(
            str(recorded["gpuType"]),
            Quantization(recorded["quantization"]),
            int(recorded["tensorParallel"]),
            Engine(recorded["engine"]),
        )
    except (KeyError, ValueError, TypeError):
        return None
    return candidate if candidate.gpu in GPUS else None


def choose(
    spec: LLMDeploymentSpec,
    name: str = "llm",
    *,
    schedulable: Mapping[str, int] | None = None,
    status: Mapping[str, Any] | None = None,
    prices: PriceTable = DEFAULT_PRICES,
    image_registry: str = DEFAULT_IMAGE_REGISTRY,
    checkpoint: CheckpointLookup | None = None,
) -> Chosen:
    """Resolve `auto`: reuse the choice status remembers for this spec, else rank every candidate by cost per
    token at its SLO capacity and take the cheapest that `schedulable` (GPU type -> most allocatable GPUs on one
    node, from the shell; None: every type) can place. A concrete spec is planned as it is."""
    if not is_auto(spec):
        return Chosen(plan(spec, name, image_registry, checkpoint))
    if isinstance(checkpoint, HubFailure):  # no candidate can be planned without the model's numbers
        finding = hub_architecture(spec, checkpoint)
        assert isinstance(finding, Finding)
        return Chosen(PlanErrors((finding,), reason=checkpoint.reason))
    known = remembered(spec, status)
    if known is not None:
        return Chosen(plan(candidate_spec(spec, known), name, image_registry, checkpoint))
    load = spec.expected_load
    workload = Workload(load.requests_per_second, load.prompt_tokens, load.output_tokens) if load else Workload()
    comparison = compare(
        spec,
        workload,
        prices,
        gpus=candidate_gpus(spec),
        quantizations=candidate_quantizations(spec),
        engines=[spec.engine],
        schedulable=schedulable,
        require_checkpoint=True,
        name=name,
        image_registry=image_registry,
        checkpoint=checkpoint,
    )
    if isinstance(comparison, PlanErrors):
        return Chosen(comparison)
    options = sized(comparison.options, spec)
    if not options:
        return Chosen(refusal(spec, comparison))
    choice = GpuChoice(
        options[0],
        options[1] if len(options) > 1 else None,
        fingerprint(spec),
        len(comparison.options) + len(comparison.rejections),
        prices,
    )
    return Chosen(plan(candidate_spec(spec, options[0].candidate), name, image_registry, checkpoint), choice)


def sized(options: Sequence[Option], spec: LLMDeploymentSpec) -> list[Option]:
    """The options at the spec's GPU count and replica bounds. An integer count keeps that TP. With an expected load,
    every TP competes on cost at that load (those needing more than replicas.max only if nothing else fits).
    Without one, count auto keeps, per GPU x method x engine, the smallest TP that holds AUTO_MIN_SEQUENCES
    full-length sequences (else the smallest viable), as count auto sizes a concrete spec: cost per token at full
    capacity alone would spread a small model over 8 GPUs for a throughput nobody asked for."""
    count = spec.gpu.count
    if count != "auto":
        return [o for o in options if o.candidate.tensor_parallel == count]
    if spec.expected_load is not None:
        within = [o for o in options if o.replicas is not None and o.replicas <= spec.replicas.max]
        return within or list(options)
    smallest: dict[tuple[str, Quantization, Engine], tuple[bool, int]] = {}
    for option in options:
        c = option.candidate
        roomy = option.plan.kv_cache_tokens >= AUTO_MIN_SEQUENCES * spec.max_model_len
        key = (not roomy, c.tensor_parallel)
        group = (c.gpu, c.quantization, c.engine)
        smallest[group] = min(smallest.get(group, key), key)
    return [
        o
        for o in options
        if smallest[(o.candidate.gpu, o.candidate.quantization, o.candidate.engine)][1] == o.candidate.tensor_parallel
    ]


def refusal(spec: LLMDeploymentSpec, comparison: Comparison) -> PlanErrors:
    """Nothing fits and schedules: name the cheapest near miss and what would make it fit."""
    field = "spec.gpu.type" if spec.gpu.type == AUTO else "spec.quantization"
    tried = len(comparison.options) + len(comparison.rejections)
    figures = {id(option) for option in sized([r.option for r in comparison.rejections if r.option], spec)}
    near = comparison.near_miss([r for r in comparison.rejections if r.option is None or id(r.option) in figures])
    if near is None:
        message = f"auto: none of {tried} candidates can run this model here; see `llmop plan --compare`"
    else:
        cost = f" (${near.option.usd_per_million_tokens:.2f} per million output tokens)" if near.option else ""
        message = (
            f"auto: none of {tried} candidates fits, meets the SLO and schedules; cheapest near miss: "
            f"{near.candidate.label}{cost}: {near.reason}; it would fit with: {near.fix}"
        )
    return PlanErrors((Finding(field, message),))
