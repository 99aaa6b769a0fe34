"""What the planner takes from a checkpoint's config.json: the architecture and a quantization cross-check. Pure."""

from __future__ import annotations

from llmop.api.spec import LLMDeploymentSpec
from llmop.catalog.hf_config import CheckpointInfo, CheckpointLookup, HubFailure
from llmop.catalog.models import MODELS, Architecture, normalize_model_name, resolve_model
from llmop.catalog.quantization import EngineRule, Quantization
from llmop.plan.suggest import closest
from llmop.plan.types import Finding


def needs_checkpoint(spec: LLMDeploymentSpec) -> bool:
    """True when only the hub's config.json can say the architecture: none given and the model not in the catalog."""
    return spec.model.architecture is None and resolve_model(spec.model.name) is None


def hub_architecture(spec: LLMDeploymentSpec, checkpoint: CheckpointLookup | None) -> Architecture | Finding:
    """The architecture config.json gave, or the finding that says why there is none and what to do."""
    if isinstance(checkpoint, CheckpointInfo):
        return checkpoint.architecture
    if isinstance(checkpoint, HubFailure):
        return Finding("spec.model.name", checkpoint.message + _catalog_hint(spec.model.name, checkpoint.reason))
    return Finding(
        "spec.model.architecture",
        f"model {spec.model.name!r} is not in llmop's catalog; set spec.model.architecture to a "
        f"catalog key ({', '.join(MODELS)}) or to the model's numbers from its config.json",
    )


def _catalog_hint(name: str, reason: str) -> str:
    """For a name the hub does not know: the catalog model it may have meant."""
    if reason != "ModelNotFound":
        return ""
    aliases = {alias: model.key for model in MODELS.values() for alias in model.aliases}
    found = closest(normalize_model_name(name), aliases, limit=1, cutoff=0.8)
    if not found:
        return ""
    key = aliases[found[0]]
    return f"; did you mean the catalog model {key} ({MODELS[key].display_name}, spec.model.architecture: {key})?"


def quantization_finding(spec: LLMDeploymentSpec, rule: EngineRule, checkpoint: CheckpointInfo) -> Finding | None:
    """A pre-quantized checkpoint must be served with its own method; a 4-bit method needs such a checkpoint."""
    stored = checkpoint.quantization
    wanted = Quantization(spec.quantization)  # the planner resolves `auto` before this
    if stored == wanted or (stored == Quantization.NONE and not rule.prequantized):
        return None
    source = f"config.json of {checkpoint.model!r}"
    if stored == Quantization.NONE:
        return Finding(
            "spec.quantization",
            f"{wanted.value} loads a pre-quantized checkpoint, but {source} has no quantization_config (16-bit "
            f"weights); use a {wanted.value.upper()} checkpoint of the model, or quantization none or fp8",
        )
    return Finding(
        "spec.quantization",
        f"{wanted.value} does not match the checkpoint: {source} says it is {stored.value} "
        f"(quantization_config.quant_method {checkpoint.quant_method!r}); set spec.quantization: {stored.value}",
    )
