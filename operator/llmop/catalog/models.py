"""Model architecture catalog and the resolution of hub names like `org/Model-Name` to catalog keys."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    """The numbers that decide weight and KV-cache memory and decode cost."""

    parameters: int
    layers: int
    hidden_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    max_position_embeddings: int
    tied_embeddings: bool = False

    @property
    def embedding_parameters(self) -> int:
        """Input embedding plus the lm_head when untied; engines keep these in 16 bits."""
        return self.vocab_size * self.hidden_size * (1 if self.tied_embeddings else 2)

    @property
    def quantizable_parameters(self) -> int:
        return max(self.parameters - self.embedding_parameters, 0)

    def kv_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        """K and V for every layer: 2 x layers x kv_heads x head_dim x bytes."""
        return 2 * self.layers * self.kv_heads * self.head_dim * dtype_bytes


# Figures are the models' config.json values on the Hugging Face hub (parameter counts from the model
# cards). The aliases are lower-case name stems, matched after the org and the usual suffixes are removed.
@dataclass(frozen=True)
class CatalogModel:
    key: str
    display_name: str
    architecture: Architecture
    aliases: tuple[str, ...]


_MODELS = (
    CatalogModel(
        "llama-3.1-8b",
        "Llama 3.1 8B",
        Architecture(8_030_261_248, 32, 4096, 32, 8, 128, 128_256, 131_072),
        ("llama-3.1-8b", "meta-llama-3.1-8b", "llama-3.1-8b-instruct", "meta-llama-3.1-8b-instruct"),
    ),
    CatalogModel(
        "llama-3.1-70b",
        "Llama 3.1 70B",
        Architecture(70_553_706_496, 80, 8192, 64, 8, 128, 128_256, 131_072),
        ("llama-3.1-70b", "meta-llama-3.1-70b", "llama-3.1-70b-instruct", "meta-llama-3.1-70b-instruct"),
    ),
    CatalogModel(
        "llama-3-8b",
        "Llama 3 8B",
        Architecture(8_030_261_248, 32, 4096, 32, 8, 128, 128_256, 8192),
        ("llama-3-8b", "meta-llama-3-8b", "meta-llama-3-8b-instruct", "llama-3-8b-instruct"),
    ),
    CatalogModel(
        "mistral-7b-v0.3",
        "Mistral 7B v0.3",
        Architecture(7_248_023_552, 32, 4096, 32, 8, 128, 32_768, 32_768),
        ("mistral-7b-v0.3", "mistral-7b-instruct-v0.3"),
    ),
    CatalogModel(
        "qwen2.5-7b",
        "Qwen2.5 7B",
        Architecture(7_615_616_512, 28, 3584, 28, 4, 128, 152_064, 32_768),
        ("qwen2.5-7b", "qwen2.5-7b-instruct"),
    ),
    CatalogModel(
        "qwen2.5-72b",
        "Qwen2.5 72B",
        Architecture(72_706_203_648, 80, 8192, 64, 8, 128, 152_064, 32_768),
        ("qwen2.5-72b", "qwen2.5-72b-instruct"),
    ),
)

MODELS: dict[str, CatalogModel] = {model.key: model for model in _MODELS}

# Suffixes that name a packaging of the same architecture (quantized re-uploads, formats).
_PACKAGING_SUFFIX = re.compile(
    r"(-(awq|gptq|fp8|int4|int8|w4a16|w8a8|w8a16|bnb|4bit|8bit|nf4|dynamic|marlin|hf|gguf|g128|sym))+$"
)


def normalize_model_name(name: str) -> str:
    """`hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4` -> `meta-llama-3.1-8b-instruct`."""
    stem = name.strip().rstrip("/").split("/")[-1].lower()
    return _PACKAGING_SUFFIX.sub("", stem)


def resolve_model(name: str) -> CatalogModel | None:
    """The catalog model a hub id or path names, or None when it is not in the catalog."""
    key = name.strip().lower()
    if key in MODELS:
        return MODELS[key]
    stem = normalize_model_name(name)
    for model in _MODELS:
        if stem in model.aliases:
            return model
    return None
