"""plan/memory.py, plan/latency.py and plan/compat.py pinned with exact figures and words: the memory split of a
replica, the decode step time term by term, the largest batch within a target, and each compatibility refusal."""

from __future__ import annotations

import pytest

from llmop.catalog.engines import Engine
from llmop.catalog.gpus import GPU, GPUS
from llmop.catalog.models import MODELS
from llmop.catalog.quantization import METHODS, EngineRule, Quantization
from llmop.catalog.versions import parse_version
from llmop.plan.compat import _version_bounds, choose_dtype, engine_gpu_finding, resolve_quantization
from llmop.plan.latency import DecodeModel
from llmop.plan.memory import GIB, fit, tp_divides_heads, weight_bytes
from llmop.plan.types import Finding

LLAMA_8B = MODELS["llama-3.1-8b"].architecture
LLAMA_70B = MODELS["llama-3.1-70b"].architecture
H100 = GPUS["H100-80GB"]
# A GPU under every method's compute-capability floor (no catalog GPU is): nothing runs there.
PASCAL = GPU("P100", 16_384, 732.0, (6, 0), 19.0, "Tesla-P100")


# ---- memory -----------------------------------------------------------------------------------------------------


def test_weight_bytes_are_quantized_linears_plus_16_bit_embeddings() -> None:
    fp8 = METHODS[Quantization.FP8]
    assert (LLAMA_8B.quantizable_parameters, LLAMA_8B.embedding_parameters) == (6_979_588_096, 1_050_673_152)
    assert weight_bytes(LLAMA_8B, fp8) == 6_979_588_096 * 1.0 + 1_050_673_152 * 2 == 9_080_934_400


def test_one_gpu_fit_pins_usable_overhead_kv_budget_and_tokens() -> None:
    memory = fit(LLAMA_8B, METHODS[Quantization.FP8], H100, 0.92, 1)
    assert memory.usable_bytes_per_gpu == pytest.approx(81_559 * 1024**2 * 0.92, rel=1e-15)
    assert memory.overhead_bytes_per_gpu == 1.5 * GIB  # no NCCL buffers on one GPU
    assert (memory.tensor_parallel, memory.weight_bytes, memory.kv_bytes_per_token) == (1, 9_080_934_400, 131_072)
    assert memory.kv_budget_bytes == pytest.approx(81_559 * 1024**2 * 0.92 - 1.5 * GIB - 9_080_934_400, rel=1e-12)
    assert memory.kv_tokens == 518_704 and memory.weights_fit
    assert memory.sequences(8192) == 518_704 / 8192


def test_sharded_fit_adds_nccl_overhead_and_counts_the_budget_over_all_shards() -> None:
    memory = fit(LLAMA_70B, METHODS[Quantization.NONE], H100, 0.92, 2)
    assert memory.overhead_bytes_per_gpu == 2.0 * GIB
    per_gpu = 81_559 * 1024**2 * 0.92 - 2.0 * GIB - 141_107_412_992 / 2
    assert memory.kv_budget_bytes == pytest.approx(per_gpu * 2, rel=1e-12)
    assert memory.kv_tokens == 36_486 and memory.kv_bytes_per_token == 327_680


def test_weights_that_do_not_fit_leave_no_kv_tokens_not_negative_ones() -> None:
    memory = fit(LLAMA_70B, METHODS[Quantization.NONE], H100, 0.92, 1)
    assert memory.kv_budget_bytes == pytest.approx(-64_038_880_542.72, rel=1e-9)
    assert (memory.kv_tokens, memory.weights_fit, memory.sequences(8192)) == (0, False, 0.0)
    exact = fit(LLAMA_8B, METHODS[Quantization.FP8], H100, 0.0, 1)
    assert not exact.weights_fit and exact.kv_tokens == 0


@pytest.mark.parametrize(
    ("heads", "kv", "tp", "divides"),
    [(32, 8, 1, True), (32, 8, 8, True), (32, 8, 16, True), (28, 4, 8, False), (40, 8, 16, False),
     (6, 2, 4, False), (12, 3, 2, False), (12, 3, 4, False), (12, 4, 12, True), (96, 8, 3, False)],
)  # fmt: skip
def test_tensor_parallel_divides_the_heads_and_splits_or_replicates_kv_heads(
    heads: int, kv: int, tp: int, divides: bool
) -> None:
    from dataclasses import replace

    assert tp_divides_heads(replace(LLAMA_8B, attention_heads=heads, kv_heads=kv), tp) is divides


# ---- latency ----------------------------------------------------------------------------------------------------

MODEL = DecodeModel(H100, 9_080_934_400.0, 131_072, 16_060_522_496, 32, 1, 0.88)


def test_step_time_is_pinned_to_the_last_bit_at_a_large_batch() -> None:
    assert MODEL.step_ms(1024, 0.0) == 12.217373878957975
    assert MODEL.step_ms(64, 4096.0) == 15.333897712514224


def test_max_batch_within_finds_each_batch_whose_step_time_is_exactly_the_target() -> None:
    for context, limit in ((4096.0, 1024), (0.0, 300), (8192.0, 97)):
        for batch in range(1, limit + 1):
            assert MODEL.max_batch_within(MODEL.step_ms(batch, context), context, limit) == batch, (context, batch)


def test_step_time_term_by_term_on_one_gpu() -> None:
    bandwidth = 3350e9
    weights_ms = 9_080_934_400 / (bandwidth * 0.81 * 0.88) * 1e3
    assert MODEL.step_ms(0, 0.0) == pytest.approx(weights_ms + 0.1, rel=1e-12)
    compute_ms = 16_060_522_496 / 989e12 * 0.5 * 1e3
    assert MODEL.floor_ms() == MODEL.step_ms(1, 0.0) == pytest.approx(weights_ms + compute_ms + 0.1, rel=1e-12)
    kv_ms = 64 * 4096 * 131_072 / (bandwidth * 0.94) * 1e3
    assert MODEL.step_ms(64, 4096.0) == pytest.approx(weights_ms + kv_ms + 64 * compute_ms + 0.1, rel=1e-12)
    assert MODEL.step_ms(64, 4096.0) == pytest.approx(15.333897713, rel=1e-9)
    assert MODEL.communication_ms() == 0.0


def test_tensor_parallel_splits_the_work_and_adds_two_all_reduces_per_layer() -> None:
    from dataclasses import replace

    nvlink = replace(MODEL, tensor_parallel=4, kernel_efficiency=1.0)
    assert nvlink.communication_ms() == pytest.approx(2 * 32 * 0.012, rel=1e-12)
    assert nvlink.step_ms(8, 1000.0) == pytest.approx(1.804129937, rel=1e-9)
    pcie = replace(MODEL, gpu=GPUS["L4"], tensor_parallel=2, kernel_efficiency=1.0)
    assert pcie.communication_ms() == pytest.approx(2 * 32 * 0.04, rel=1e-12)
    assert pcie.step_ms(1, 0.0) == pytest.approx(21.378233103, rel=1e-9)
    assert replace(MODEL, gpu=GPUS["H100-PCIe"], tensor_parallel=2).communication_ms() == pytest.approx(2.56)


@pytest.mark.parametrize(
    ("target", "context", "limit", "batch"),
    [(50.0, 4096.0, 1024, 258), (20.0, 4096.0, 1024, 90), (50.0, 4096.0, 8, 8), (50.0, 4096.0, 258, 258),
     (50.0, 4096.0, 0, 1), (3.0, 4096.0, 8, 0), (3.911047026881, 0.0, 8, 0), (3.911047026882, 0.0, 1, 1)],
)  # fmt: skip
def test_max_batch_within_is_the_largest_batch_at_or_under_the_target(
    target: float, context: float, limit: int, batch: int
) -> None:
    assert MODEL.max_batch_within(target, context, limit) == batch
    if 1 <= batch < limit:
        assert MODEL.step_ms(batch, context) <= target < MODEL.step_ms(batch + 1, context)


# ---- compat -----------------------------------------------------------------------------------------------------


def _resolve(quantization: str, engine: str, version: str, gpu: GPU | str) -> EngineRule | Finding:
    card = GPUS[gpu] if isinstance(gpu, str) else gpu
    return resolve_quantization(Quantization(quantization), Engine(engine), parse_version(version), version, card)


GPUS_FOR_FP8 = "A10G, L4, L40S, A100-40GB, A100-80GB, H100-80GB, H100-PCIe, H200"


@pytest.mark.parametrize(
    ("args", "finding"),
    [
        (("fp8", "vllm", "0.19.0", "T4"),
         ("spec.gpu.type", "quantization fp8 on vLLM 0.19.0 needs compute capability 8.0 or newer; T4 is 7.5. GPUs "
          f"that run it: {GPUS_FOR_FP8}, B200; use quantization awq/gptq/int8/nf4")),
        (("awq", "tgi", "3.3.7", "T4"),
         ("spec.gpu.type", "quantization awq on TGI 3.3.7 needs compute capability 8.0 or newer; T4 is 7.5. GPUs "
          f"that run it: {GPUS_FOR_FP8}; use engine vllm, or quantization int8/nf4/fp4")),
        (("int8", "vllm", "0.28.0", "T4"),
         ("spec.quantization", "quantization int8 is not available in vLLM 0.28.0 (removed in 0.28.0); use engine "
          "tgi, or quantization fp8/awq/gptq")),
        (("fp4", "vllm", "0.11.0", "H100-80GB"),
         ("spec.quantization", "quantization fp4 is not available in vLLM; use engine tgi, or quantization "
          "fp8/awq/gptq/int8/nf4")),
        (("fp8", "vllm", "0.33.0", PASCAL),
         ("spec.gpu.type", "quantization fp8 on vLLM 0.33.0 needs compute capability 7.5 or newer; P100 is 6.0. GPUs "
          f"that run it: T4, {GPUS_FOR_FP8}, B200")),
        (("none", "tgi", "3.3.7", PASCAL),
         ("spec.gpu.type", "quantization none on TGI 3.3.7 needs compute capability 7.5 or newer; P100 is 6.0. GPUs "
          f"that run it: T4, {GPUS_FOR_FP8}")),
    ],
)  # fmt: skip
def test_each_compatibility_refusal_word_for_word(args: tuple[str, str, str, GPU | str],
                                                  finding: tuple[str, str]) -> None:  # fmt: skip
    result = _resolve(*args)
    assert isinstance(result, Finding) and (result.field, result.message) == finding


@pytest.mark.parametrize(
    ("args", "flag", "warned"),
    [
        (("fp8", "vllm", "0.33.0", "H100-80GB"), "fp8", False),
        (("fp8", "vllm", "0.19.0", "A100-80GB"), "fp8", True),  # weight-only below Ada
        (("fp8", "vllm", "0.20.0", "T4"), "fp8", True),
        (("awq", "vllm", "0.19.0", "T4"), "awq", True),  # the plain kernel before Marlin covered Turing
        (("awq", "vllm", "0.20.0", "T4"), "awq_marlin", False),
        (("int8", "vllm", "0.27.0", "L4"), "bitsandbytes", True),
        (("nf4", "tgi", "3.3.7", "T4"), "bitsandbytes-nf4", True),
        (("none", "vllm", "0.33.0", "T4"), None, False),
    ],
)
def test_the_first_matching_rule_is_used(args: tuple[str, str, str, str], flag: str | None, warned: bool) -> None:
    rule = _resolve(*args)
    assert isinstance(rule, EngineRule) and rule.flag == flag and (rule.warning is not None) is warned


def test_version_bounds_name_the_release_that_removed_or_added_a_method() -> None:
    removed = EngineRule(Engine.VLLM, "x", 75, until="0.28.0")
    added = EngineRule(Engine.VLLM, "y", 75, since="0.30.0")
    both = (removed, added, EngineRule(Engine.VLLM, "z", 75, since="0.10.0", until="0.12.0"))
    assert _version_bounds(both, parse_version("0.29.0")) == "added in 0.30.0, removed in 0.12.0, removed in 0.28.0"
    assert _version_bounds((added,), parse_version("0.30.0")) == ""
    assert _version_bounds((removed,), parse_version("0.27.9")) == ""
    assert _version_bounds((EngineRule(Engine.VLLM, "w", 75),), parse_version("0.29.0")) == ""


def test_a_gpu_without_a_build_is_refused_with_what_would_work() -> None:
    assert engine_gpu_finding(Engine.VLLM, GPUS["B200"]) is None
    refusal = engine_gpu_finding(Engine.TGI, GPUS["B200"])
    assert refusal == Finding(
        "spec.gpu.type",
        "TGI has no build for B200 (blackwell, sm100): its images target CUDA 12.4 and sm75-sm90. Use engine vllm, "
        f"or gpu.type T4/{GPUS_FOR_FP8.replace(', ', '/')}",
    )


def test_bfloat16_from_cc_8_0_float16_below() -> None:
    assert [choose_dtype(GPUS[name]) for name in ("T4", "A10G", "A100-80GB", "H100-80GB")] == [
        "float16", "bfloat16", "bfloat16", "bfloat16"
    ]  # fmt: skip
