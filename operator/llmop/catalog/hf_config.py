"""A Hugging Face `config.json` -> the model's Architecture and the checkpoint's quantization. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmop.catalog.models import Architecture
from llmop.catalog.quantization import Quantization

# model_type values whose configs tie the lm_head to the input embedding unless they say otherwise
# (transformers' per-model defaults; Llama, Mistral, Qwen2 and Phi-3 default to untied).
_TIED_BY_DEFAULT = frozenset({"gemma", "gemma2", "gemma3", "gemma3_text", "phi"})
# model_type values with a two-matrix MLP (fc1/fc2); the rest have a gated three-matrix MLP.
_PLAIN_MLP = frozenset({"phi", "gpt2", "gpt_neox", "falcon"})
# model_type values with q/k/v biases (Qwen2) or biases on every linear layer (Phi-2).
_QKV_BIAS = frozenset({"qwen2", "qwen2_moe"})


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint's config.json states: its architecture and how its weights are stored."""

    model: str
    model_type: str
    architecture: Architecture
    quantization: Quantization  # NONE for a 16-bit checkpoint
    quant_method: str | None  # quantization_config.quant_method as written, when there is one


@dataclass(frozen=True)
class HubFailure:
    """config.json could not be read or understood; the message names the model and what to do."""

    model: str
    reason: str  # a CamelCase reason for the Planned condition, e.g. ModelConfigUnavailable
    message: str


CheckpointLookup = CheckpointInfo | HubFailure


def _int(config: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """Multimodal wrappers (Gemma 3, Llava, Mistral3) keep the language model's numbers under text_config."""
    inner = config.get("text_config")
    if _int(config, "hidden_size", "n_embd") is None and isinstance(inner, Mapping):
        return inner
    return config


def checkpoint_quantization(config: Mapping[str, Any]) -> tuple[Quantization, str | None] | str:
    """The llmop method a quantization_config stands for, or a message when llmop has none for it."""
    qc = config.get("quantization_config")
    if not isinstance(qc, Mapping):
        return Quantization.NONE, None
    method = str(qc.get("quant_method") or "").lower()
    if method in {"awq", "awq_marlin"}:
        return Quantization.AWQ, method
    if method in {"gptq", "gptq_marlin"}:
        return Quantization.GPTQ, method
    if method in {"fp8", "fbgemm_fp8"}:
        return Quantization.FP8, method
    if method == "modelopt" and "fp8" in str(qc.get("quant_algo", "")).lower():
        return Quantization.FP8, method
    if method == "bitsandbytes":
        if qc.get("load_in_8bit"):
            return Quantization.INT8, method
        kind = str(qc.get("bnb_4bit_quant_type") or "fp4").lower()
        return (Quantization.NF4 if kind == "nf4" else Quantization.FP4), method
    if method == "compressed-tensors" and _compressed_fp8(qc):
        return Quantization.FP8, method
    return f"quantization_config.quant_method {method or '(empty)'!r} is not a method llmop plans for"


def _compressed_fp8(qc: Mapping[str, Any]) -> bool:
    groups = qc.get("config_groups")
    if not isinstance(groups, Mapping):
        return False
    for group in groups.values():
        weights = group.get("weights") if isinstance(group, Mapping) else None
        if not isinstance(weights, Mapping) or weights.get("num_bits") != 8 or weights.get("type") != "float":
            return False
    return bool(groups)


def _parameters(config: Mapping[str, Any], model_type: str, numbers: dict[str, int], tied: bool) -> int:
    """Parameters counted from the shapes: embeddings, attention, MLP (x experts), norms and biases."""
    hidden, heads, kv, head_dim = numbers["hidden"], numbers["heads"], numbers["kv"], numbers["head_dim"]
    intermediate = numbers["intermediate"]
    attention = hidden * heads * head_dim * 2 + hidden * kv * head_dim * 2
    if model_type in _QKV_BIAS:
        attention += heads * head_dim + 2 * kv * head_dim
    experts = _int(config, "num_local_experts", "num_experts") or 1
    expert_size = _int(config, "moe_intermediate_size") or intermediate
    if model_type in _PLAIN_MLP:
        mlp = 2 * hidden * intermediate + (intermediate + hidden if model_type == "phi" else 0)
        attention += 4 * hidden if model_type == "phi" else 0
    else:
        mlp = 3 * hidden * expert_size * experts + (hidden * experts if experts > 1 else 0)
    per_layer = attention + mlp + 2 * hidden
    embeddings = numbers["vocab"] * hidden * (1 if tied else 2)
    return numbers["layers"] * per_layer + embeddings + hidden


def parse_config(model: str, config: Mapping[str, Any]) -> CheckpointInfo | HubFailure:
    """Read a Llama/Mistral/Qwen/Gemma/Phi-style config.json; a HubFailure names what is missing."""
    outer_type = str(config.get("model_type") or "")
    text = _text_config(config)
    model_type = str(text.get("model_type") or outer_type or "unknown")
    hidden = _int(text, "hidden_size", "n_embd")
    heads = _int(text, "num_attention_heads", "n_head")
    found = {
        "hidden": hidden,
        "layers": _int(text, "num_hidden_layers", "n_layer"),
        "heads": heads,
        "vocab": _int(text, "vocab_size") or _int(config, "vocab_size"),
        "intermediate": _int(text, "intermediate_size", "n_inner") or (4 * hidden if hidden else None),
        "context": _int(text, "max_position_embeddings", "n_positions", "seq_length"),
    }
    missing = [key for key, value in found.items() if value is None]
    if missing:
        return HubFailure(
            model,
            "ModelConfigUnsupported",
            f"config.json of {model!r} (model_type {model_type!r}) has no {', '.join(missing)}; set "
            "spec.model.architecture to the model's numbers",
        )
    numbers = {key: int(value or 0) for key, value in found.items()}
    numbers["kv"] = _int(text, "num_key_value_heads", "num_kv_heads") or numbers["heads"]
    numbers["head_dim"] = _int(text, "head_dim") or numbers["hidden"] // numbers["heads"]
    tied_value = text.get("tie_word_embeddings", config.get("tie_word_embeddings"))
    tied = bool(tied_value) if isinstance(tied_value, bool) else model_type in _TIED_BY_DEFAULT
    quantization = checkpoint_quantization(text if "quantization_config" in text else config)
    if isinstance(quantization, str):
        return HubFailure(
            model, "ModelConfigUnsupported", f"{model!r}: {quantization}; use an AWQ, GPTQ, FP8 or bitsandbytes one"
        )
    architecture = Architecture(
        parameters=_parameters(text, model_type, numbers, tied),
        layers=numbers["layers"],
        hidden_size=numbers["hidden"],
        attention_heads=numbers["heads"],
        kv_heads=numbers["kv"],
        head_dim=numbers["head_dim"],
        vocab_size=numbers["vocab"],
        max_position_embeddings=numbers["context"],
        tied_embeddings=tied,
    )
    return CheckpointInfo(model, model_type, architecture, quantization[0], quantization[1])
