"""config.json -> architecture and checkpoint quantization (pure), and the planner planning from it."""

from __future__ import annotations

from typing import Any

import pytest

from llmop.catalog.hf_config import CheckpointInfo, HubFailure, parse_config
from llmop.catalog.models import MODELS
from llmop.catalog.quantization import Quantization
from llmop.controller.status_update import Observed, compute_status
from llmop.plan.checkpoint import needs_checkpoint
from llmop.plan.parse import parse_spec
from llmop.plan.planner import plan
from llmop.plan.types import Plan, PlanErrors
from llmop.sizing.choose import choose
from support import hub_configs as cfg


def _info(config: dict[str, Any], model: str = "acme/model") -> CheckpointInfo:
    info = parse_config(model, config)
    assert isinstance(info, CheckpointInfo), info
    return info


@pytest.mark.parametrize(
    ("config", "catalog_key"),
    [(cfg.LLAMA_31_8B, "llama-3.1-8b"), (cfg.MISTRAL_7B_V03, "mistral-7b-v0.3"), (cfg.QWEN25_7B, "qwen2.5-7b")],
)
def test_config_gives_exactly_the_catalog_architecture(config: dict[str, Any], catalog_key: str) -> None:
    assert _info(config).architecture == MODELS[catalog_key].architecture


@pytest.mark.parametrize(
    ("config", "parameters", "head_dim", "tied"),
    [
        (cfg.GEMMA2_9B, 9_241_404_928, 256, True),  # model card: 9.24B; head_dim stated, embeddings tied
        (cfg.PHI3_MINI, 3_821_079_552, 96, False),  # model card: 3.8B; head_dim = hidden / heads
        (cfg.GEMMA3_12B, 11_765_640_960, 256, True),  # text_config of the multimodal wrapper (language model)
    ],
)
def test_gemma_and_phi_configs(config: dict[str, Any], parameters: int, head_dim: int, tied: bool) -> None:
    arch = _info(config).architecture
    assert (arch.parameters, arch.head_dim, arch.tied_embeddings) == (parameters, head_dim, tied)


@pytest.mark.parametrize(
    ("config", "method", "raw"),
    [
        (cfg.QWEN25_7B_AWQ, Quantization.AWQ, "awq"),
        (cfg.LLAMA_31_8B_GPTQ, Quantization.GPTQ, "gptq"),
        (cfg.LLAMA_31_8B_FP8, Quantization.FP8, "compressed-tensors"),
        ({**cfg.LLAMA_31_8B, "quantization_config": {"quant_method": "fp8"}}, Quantization.FP8, "fp8"),
        (
            {
                **cfg.LLAMA_31_8B,
                "quantization_config": {
                    "quant_method": "bitsandbytes",
                    "load_in_4bit": True,
                    "bnb_4bit_quant_type": "nf4",
                },
            },
            Quantization.NF4,
            "bitsandbytes",
        ),
        (cfg.LLAMA_31_8B, Quantization.NONE, None),
    ],
)
def test_quantization_is_read_from_the_file(config: dict[str, Any], method: Quantization, raw: str | None) -> None:
    info = _info(config, "acme/plain-name")
    assert (info.quantization, info.quant_method) == (method, raw)


def test_unknown_quantization_and_missing_numbers_are_named() -> None:
    odd = parse_config("acme/m", {**cfg.LLAMA_31_8B, "quantization_config": {"quant_method": "hqq"}})
    assert odd == HubFailure(
        "acme/m",
        "ModelConfigUnsupported",
        "'acme/m': quantization_config.quant_method 'hqq' is not a method llmop plans for; use an AWQ, GPTQ, FP8 or "
        "bitsandbytes one",
    )
    bare = parse_config("acme/m", {"model_type": "mamba", "hidden_size": 2560, "vocab_size": 50280})
    assert isinstance(bare, HubFailure)
    assert bare.message == (
        "config.json of 'acme/m' (model_type 'mamba') has no layers, heads, context; set spec.model.architecture to "
        "the model's numbers"
    )


def _spec(model: str, quantization: str = "none", gpu: str = "H100-80GB", **extra: Any) -> Any:
    spec = parse_spec({"model": {"name": model, **extra}, "quantization": quantization, "gpu": {"type": gpu},
                       "maxModelLen": 8192})  # fmt: skip
    assert not isinstance(spec, PlanErrors)
    return spec


def test_only_uncatalogued_models_without_architecture_need_the_hub() -> None:
    assert needs_checkpoint(_spec("acme/Fancy-7B"))
    assert not needs_checkpoint(_spec("meta-llama/Llama-3.1-8B-Instruct"))
    assert not needs_checkpoint(_spec("acme/Fancy-7B", architecture="llama-3.1-8b"))


def test_planner_plans_from_the_checkpoint_like_the_catalog_model() -> None:
    from_hub = plan(_spec("acme/Fancy-8B"), "fancy", checkpoint=_info(cfg.LLAMA_31_8B, "acme/Fancy-8B"))
    from_catalog = plan(_spec("meta-llama/Llama-3.1-8B-Instruct"), "fancy")
    assert isinstance(from_hub, Plan) and isinstance(from_catalog, Plan)
    assert (from_hub.weights_gib, from_hub.kv_cache_tokens, from_hub.tensor_parallel) == (
        from_catalog.weights_gib, from_catalog.kv_cache_tokens, from_catalog.tensor_parallel)  # fmt: skip


def test_awq_checkpoint_without_awq_in_its_name_plans_without_a_name_warning() -> None:
    info = _info(cfg.QWEN25_7B_AWQ, "acme/qwen-seven")
    result = plan(_spec("acme/qwen-seven", "awq", "L4"), "q", checkpoint=info)
    assert isinstance(result, Plan)
    assert [w.field for w in result.warnings if w.field == "spec.model.name"] == []
    assert result.quantization_flag == "awq_marlin"


def test_quantization_that_contradicts_the_file_is_refused_with_the_fix() -> None:
    awq = _info(cfg.QWEN25_7B_AWQ, "acme/qwen-seven")
    refused = plan(_spec("acme/qwen-seven", "none", "L4"), "q", checkpoint=awq)
    assert isinstance(refused, PlanErrors)
    assert [str(e) for e in refused.errors] == [
        "spec.quantization: none does not match the checkpoint: config.json of 'acme/qwen-seven' says it is awq "
        "(quantization_config.quant_method 'awq'); set spec.quantization: awq"
    ]
    plain = _info(cfg.QWEN25_7B, "acme/qwen-plain")
    refused = plan(_spec("acme/qwen-plain", "gptq", "L4"), "q", checkpoint=plain)
    assert isinstance(refused, PlanErrors)
    assert [str(e) for e in refused.errors] == [
        "spec.quantization: gptq loads a pre-quantized checkpoint, but config.json of 'acme/qwen-plain' has no "
        "quantization_config (16-bit weights); use a GPTQ checkpoint of the model, or quantization none or fp8"
    ]
    online_fp8 = plan(_spec("acme/qwen-plain", "fp8", "H100-80GB"), "q", checkpoint=plain)
    assert isinstance(online_fp8, Plan)


def test_hub_failure_becomes_the_models_finding_with_a_catalog_suggestion() -> None:
    failure = HubFailure("meta-llama/Llama-3.1-8B-Instruc", "ModelNotFound", "the hub has no model")
    refused = plan(_spec("meta-llama/Llama-3.1-8B-Instruc"), "x", checkpoint=failure)
    assert isinstance(refused, PlanErrors)
    assert [str(e) for e in refused.errors] == [
        "spec.model.name: the hub has no model; did you mean the catalog model llama-3.1-8b (Llama 3.1 8B, "
        "spec.model.architecture: llama-3.1-8b)?"
    ]
    no_hub = plan(_spec("acme/Fancy-8B"), "x")
    assert isinstance(no_hub, PlanErrors) and no_hub.errors[0].field == "spec.model.architecture"
    assert (refused.reason, no_hub.reason) == ("ModelNotFound", "PlanRefused")


def test_planned_condition_carries_the_hub_reason() -> None:
    failure = HubFailure("acme/gated", "ModelGated", "'acme/gated' is gated on https://hub: accept its licence")
    refused = plan(_spec("acme/gated"), "x", checkpoint=failure)
    assert isinstance(refused, PlanErrors)
    update = compute_status({}, 3, refused, Observed(deployment=None), "2026-12-02T05:00:00Z")
    [planned] = [c for c in update.status["conditions"] if c["type"] == "Planned"]
    assert (planned["status"], planned["reason"], planned["observedGeneration"]) == ("False", "ModelGated", 3)
    assert planned["message"] == "spec.model.name: 'acme/gated' is gated on https://hub: accept its licence"


def _auto_spec(model: str) -> Any:
    spec = parse_spec({"model": {"name": model}, "gpu": {"type": "auto", "candidates": ["L4", "A10G", "H100-80GB"]},
                       "maxModelLen": 8192, "slo": {"decodeLatency": {"targetMs": 40}}})  # fmt: skip
    assert not isinstance(spec, PlanErrors)
    return spec


def test_gpu_auto_chooses_from_the_checkpoint_and_names_a_hub_failure() -> None:
    info = _info(cfg.QWEN25_7B_AWQ, "acme/qwen-seven")
    chosen = choose(_auto_spec("acme/qwen-seven").model_copy(update={"quantization": Quantization.AWQ}), "q",
                    checkpoint=info)  # fmt: skip
    assert isinstance(chosen.result, Plan) and chosen.choice is not None
    assert chosen.result.quantization == "awq" and chosen.result.gpu_type in {"L4", "A10G", "H100-80GB"}
    failure = HubFailure("acme/gated", "ModelGated", "'acme/gated' is gated on https://hub: accept its licence")
    refused = choose(_auto_spec("acme/gated"), "g", checkpoint=failure)
    assert isinstance(refused.result, PlanErrors) and refused.choice is None
    assert refused.result.reason == "ModelGated"
    assert [str(e) for e in refused.result.errors] == ["spec.model.name: " + failure.message]
