"""Attention kernel, engine flag or env var, and the image's FlashAttention build per GPU architecture."""

from __future__ import annotations

import pytest

from llmop.catalog.engines import IMAGE_BUILDS, Engine, image_build
from llmop.catalog.gpus import GPUS
from llmop.plan.parse import parse_spec
from llmop.plan.planner import plan
from llmop.plan.types import Plan


def _plan(engine: str, gpu: str, version: str | None = None) -> Plan:
    spec = parse_spec(
        {
            "model": {"name": "meta-llama/Llama-3.1-8B-Instruct"},
            "engine": engine,
            "engineVersion": version,
            "gpu": {"type": gpu},
            "maxModelLen": 4096,
        }
    )
    result = plan(spec)  # type: ignore[arg-type]
    assert isinstance(result, Plan), result
    return result


@pytest.mark.parametrize(
    ("gpu", "kernel", "backend", "variant"),
    [
        ("T4", "triton", "TRITON_ATTN", "sm75"),
        ("A10G", "flash-attention-2", "FLASH_ATTN", "sm80"),
        ("A100-80GB", "flash-attention-2", "FLASH_ATTN", "sm80"),
        ("L4", "flash-attention-2", "FLASH_ATTN", "sm89"),
        ("H100-80GB", "flash-attention-3", "FLASH_ATTN", "sm90"),
        ("H200", "flash-attention-3", "FLASH_ATTN", "sm90"),
        ("B200", "flashinfer", "FLASHINFER", "sm100"),
    ],
)
def test_vllm_attention_per_gpu(gpu: str, kernel: str, backend: str, variant: str) -> None:
    p = _plan("vllm", gpu)
    assert p.attention_backend == kernel
    i = p.args.index("--attention-backend")
    assert p.args[i + 1] == backend
    assert "VLLM_ATTENTION_BACKEND" not in p.env
    assert p.image.endswith(f":0.33.0-{variant}")


def test_old_vllm_uses_the_env_var_not_the_flag() -> None:
    p = _plan("vllm", "A100-80GB", version="0.12.0")
    assert "--attention-backend" not in p.args
    assert p.env["VLLM_ATTENTION_BACKEND"] == "FLASH_ATTN"


def test_tgi_has_no_fa3_and_pages_on_turing() -> None:
    hopper = _plan("tgi", "H100-80GB")
    assert hopper.attention_backend == "flashinfer" and hopper.env["ATTENTION"] == "flashinfer"
    assert image_build(Engine.TGI, GPUS["H100-80GB"].architecture).flash_attention == "fa2"  # type: ignore[union-attr]
    turing = _plan("tgi", "T4")
    assert turing.attention_backend == "paged"
    assert turing.env["ATTENTION"] == "paged" and turing.env["PREFIX_CACHING"] == "0"


def test_fa_builds_follow_the_architecture() -> None:
    by_key = {(b.engine, b.architecture.value): b for b in IMAGE_BUILDS}
    assert by_key[(Engine.VLLM, "hopper")].flash_attention == "fa3"
    assert by_key[(Engine.VLLM, "hopper")].cuda_arch_list == "9.0a"
    assert by_key[(Engine.VLLM, "ampere")].flash_attention == "fa2"
    assert by_key[(Engine.VLLM, "turing")].flash_attention == "none"
    assert by_key[(Engine.TGI, "turing")].flash_attention == "fa1"
    assert all(b.flash_attention != "fa3" for b in IMAGE_BUILDS if b.engine == Engine.TGI)


def test_dtype_follows_bf16_support() -> None:
    assert _plan("vllm", "T4").dtype == "float16"
    assert _plan("vllm", "A10G").dtype == "bfloat16"
    t4 = _plan("vllm", "T4")
    assert t4.args[t4.args.index("--dtype") + 1] == "float16"


def test_the_vllm_venv_script_pins_the_catalog_version() -> None:
    """scripts/vllm-venv.sh builds the parser venv of the version the catalog pins (one version, two places)."""
    from pathlib import Path

    from llmop.catalog.engines import ENGINES

    script = (Path(__file__).resolve().parents[2] / "scripts/vllm-venv.sh").read_text(encoding="utf-8")
    assert f"\nVLLM_VERSION={ENGINES[Engine.VLLM].pinned_version}\n" in script
