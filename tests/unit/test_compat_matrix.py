"""Every quantization x every GPU x both engines: accepted, accepted with a warning, or refused."""

from __future__ import annotations

import pytest

from llmop.catalog.gpus import GPUS
from llmop.catalog.quantization import Quantization
from llmop.plan.parse import parse_spec
from llmop.plan.planner import plan
from llmop.plan.types import Plan, PlanErrors

OK, WARN, NO = "ok", "warn", "refused"
OLD = ("T4",)
PRE_ADA = ("T4", "A10G", "A100-40GB", "A100-80GB")
PRE_HOPPER = ("T4", "A10G", "L4", "L40S", "A100-40GB", "A100-80GB")


# Hand-written from ../shared/reference/engines.md (sections 3.3, 5, 8), independent of the catalog code.
def expected(engine: str, quant: str, gpu: str) -> str:
    if engine == "tgi":
        if gpu == "B200":
            return NO  # no TGI build for Blackwell (CUDA 12.4 images)
        if quant == "none":
            return OK
        if quant == "fp8":
            return NO if gpu in OLD else (WARN if gpu in PRE_HOPPER else OK)
        if quant in ("awq", "gptq"):
            return NO if gpu in OLD else OK
        return WARN  # bitsandbytes int8/nf4/fp4: slower than fp16
    if quant == "none":
        return OK
    if quant == "fp8":
        return WARN if gpu in PRE_ADA else OK  # weight-only Marlin FP8 below cc 8.9
    if quant in ("awq", "gptq"):
        return OK  # Marlin from Turing in vLLM >= 0.20
    return NO  # int8/nf4 removed in 0.28.0; fp4 never in vLLM


def _outcome(
    engine: str, quant: str, gpu: str, version: str | None = None, count: int | str = "auto"
) -> Plan | PlanErrors:
    name = {"awq": "org/Model-AWQ", "gptq": "org/Model-GPTQ", "int8": "org/Model-bnb-8bit"}.get(quant, "org/Model")
    spec = parse_spec(
        {
            "model": {"name": name, "architecture": "llama-3.1-8b"},
            "engine": engine,
            "engineVersion": version,
            "quantization": quant,
            "gpu": {"type": gpu, "count": count},
            "maxModelLen": 4096,
        }
    )
    assert not isinstance(spec, PlanErrors), spec
    return plan(spec)


@pytest.mark.parametrize("engine", ["vllm", "tgi"])
@pytest.mark.parametrize("quant", [q.value for q in Quantization])
@pytest.mark.parametrize("gpu", list(GPUS))
def test_matrix(engine: str, quant: str, gpu: str) -> None:
    result = _outcome(engine, quant, gpu)
    want = expected(engine, quant, gpu)
    if want == NO:
        assert isinstance(result, PlanErrors), f"{engine}/{quant}/{gpu} should be refused"
        assert all(e.field.startswith("spec.") and len(e.message) > 30 for e in result.errors)
        return
    assert isinstance(result, Plan), f"{engine}/{quant}/{gpu} refused: {getattr(result, 'summary', '')}"
    quant_warnings = [w for w in result.warnings if w.field == "spec.quantization"]
    assert bool(quant_warnings) == (want == WARN), (engine, quant, gpu, quant_warnings)


def test_refusal_names_field_value_reason_and_alternatives() -> None:
    result = _outcome("vllm", "nf4", "L4")
    assert isinstance(result, PlanErrors)
    (error,) = result.errors
    assert error.field == "spec.quantization"
    assert "nf4" in error.message and "vLLM 0.33.0" in error.message and "removed in 0.28.0" in error.message
    assert "engine tgi" in error.message and "awq" in error.message


def test_bitsandbytes_still_in_vllm_before_0_28() -> None:
    assert isinstance(_outcome("vllm", "nf4", "L4", version="0.27.0"), Plan)
    assert isinstance(_outcome("vllm", "nf4", "L4", version="0.28.0"), PlanErrors)


def test_vllm_fp8_floor_moved_from_ampere_to_turing_in_0_20() -> None:
    old = _outcome("vllm", "fp8", "T4", version="0.19.0")
    assert isinstance(old, PlanErrors)
    assert old.errors[0].field == "spec.gpu.type" and "8.0" in old.errors[0].message and "7.5" in old.errors[0].message
    assert isinstance(_outcome("vllm", "fp8", "T4", version="0.20.0"), Plan)


def test_tgi_awq_on_turing_points_to_ampere_gpus_and_vllm() -> None:
    result = _outcome("tgi", "awq", "T4")
    assert isinstance(result, PlanErrors)
    message = result.errors[0].message
    assert "needs compute capability 8.0" in message and "engine vllm" in message and "B200" not in message


def test_old_vllm_awq_on_turing_falls_back_to_plain_kernel() -> None:
    result = _outcome("vllm", "awq", "T4", version="0.11.0")
    assert isinstance(result, Plan)
    assert result.quantization_flag == "awq"
    assert _outcome("vllm", "awq", "A100-80GB", version="0.11.0").quantization_flag == "awq_marlin"  # type: ignore[union-attr]


def test_unsupported_engine_version_is_refused_with_range() -> None:
    result = _outcome("vllm", "none", "H100-80GB", version="0.9.2")
    assert isinstance(result, PlanErrors)
    assert result.errors[0].field == "spec.engineVersion" and "0.11.0 to 0.33.0" in result.errors[0].message
