"""Memory fit and tensor-parallel choice."""

from __future__ import annotations

from llmop.catalog.models import MODELS
from llmop.catalog.quantization import METHODS, Quantization
from llmop.plan.memory import GIB, tp_divides_heads, weight_bytes
from llmop.plan.parse import parse_spec
from llmop.plan.planner import plan
from llmop.plan.types import Plan, PlanErrors


def _plan(**spec: object) -> Plan | PlanErrors:
    parsed = parse_spec({"model": {"name": "meta-llama/Llama-3.1-70B-Instruct"}, **spec})
    assert not isinstance(parsed, PlanErrors), parsed
    return plan(parsed)


def test_weight_bytes_by_method() -> None:
    arch = MODELS["llama-3.1-8b"].architecture
    bf16 = weight_bytes(arch, METHODS[Quantization.NONE])
    assert abs(bf16 - arch.parameters * 2) < 1  # 16-bit: embeddings and linears alike
    int4 = weight_bytes(arch, METHODS[Quantization.AWQ])
    # 4.16 bits on the linears, 16 bits on embedding + lm_head (2 x 128256 x 4096)
    assert abs(int4 - (arch.parameters - 2 * 128256 * 4096) * 4.16 / 8 - 2 * 128256 * 4096 * 2) < 1
    assert 2.5 < bf16 / int4 < 3.0  # the 16-bit embeddings weigh a lot in an 8B model: far from 4x
    big = MODELS["llama-3.1-70b"].architecture
    ratio = weight_bytes(big, METHODS[Quantization.NONE]) / weight_bytes(big, METHODS[Quantization.AWQ])
    assert 3.5 < ratio < 3.85


def test_kv_bytes_per_token() -> None:
    assert MODELS["llama-3.1-8b"].architecture.kv_bytes_per_token() == 2 * 32 * 8 * 128 * 2
    assert MODELS["llama-3.1-70b"].architecture.kv_bytes_per_token() == 2 * 80 * 8 * 128 * 2


def test_70b_bf16_auto_picks_the_smallest_tp_with_room_for_concurrency() -> None:
    h100 = _plan(gpu={"type": "H100-80GB"}, maxModelLen=8192)
    assert isinstance(h100, Plan) and h100.tensor_parallel == 2
    # 4 x A100-40GB hold the 131 GiB of weights but leave KV room for only ~3 sequences of 8192 tokens
    four = _plan(gpu={"type": "A100-40GB", "count": 4}, maxModelLen=8192)
    assert isinstance(four, Plan) and 2 < four.kv_cache_tokens / 8192 < 4
    auto = _plan(gpu={"type": "A100-40GB"}, maxModelLen=8192)
    assert isinstance(auto, Plan) and auto.tensor_parallel == 8


def test_explicit_count_that_cannot_hold_the_weights_is_refused() -> None:
    result = _plan(gpu={"type": "H100-80GB", "count": 1})
    assert isinstance(result, PlanErrors)
    (error,) = result.errors
    assert error.field == "spec.gpu.count"
    assert "1 x H100-80GB" in error.message and "use gpu.count 2 or auto" in error.message


def test_nothing_fits_names_the_way_out() -> None:
    result = _plan(gpu={"type": "T4"}, maxModelLen=8192)
    assert isinstance(result, PlanErrors)
    assert result.errors[0].field == "spec.gpu.count" and "4-bit quantization" in result.errors[0].message


def test_tp_must_divide_heads() -> None:
    qwen7 = MODELS["qwen2.5-7b"].architecture  # 28 attention heads, 4 KV heads
    assert tp_divides_heads(qwen7, 4) and not tp_divides_heads(qwen7, 8) and not tp_divides_heads(qwen7, 3)
    parsed = parse_spec({"model": {"name": "Qwen/Qwen2.5-7B-Instruct"}, "gpu": {"type": "L4", "count": 8}})
    result = plan(parsed)  # type: ignore[arg-type]
    assert isinstance(result, PlanErrors) and "28 attention heads" in result.errors[0].message


def test_auto_grows_tp_to_reach_an_slo_the_floor_of_one_gpu_misses() -> None:
    loose = _plan(
        model={"name": "meta-llama/Llama-3.1-8B-Instruct"},
        gpu={"type": "A100-80GB"},
        slo={"decodeLatency": {"targetMs": 40}},
    )
    tight = _plan(
        model={"name": "meta-llama/Llama-3.1-8B-Instruct"},
        gpu={"type": "A100-80GB"},
        slo={"decodeLatency": {"targetMs": 6}},
    )
    assert isinstance(loose, Plan) and isinstance(tight, Plan)
    assert loose.tensor_parallel == 1 and tight.tensor_parallel > 1
    assert tight.decode_floor_ms <= 6 < loose.decode_floor_ms


def test_kv_cache_is_what_is_left_after_weights_and_overhead() -> None:
    p = _plan(model={"name": "meta-llama/Llama-3.1-8B-Instruct"}, gpu={"type": "H100-80GB"})
    assert isinstance(p, Plan)
    usable = 81559 * 1024**2 * 0.92 / GIB
    assert abs(p.kv_cache_gib - (usable - 1.5 - p.weights_gib)) < 0.01
    assert p.kv_cache_tokens == int(p.kv_cache_gib * GIB // (2 * 32 * 8 * 128 * 2))


def test_max_model_len_beyond_model_context_is_refused() -> None:
    result = _plan(model={"name": "meta-llama/Meta-Llama-3-8B-Instruct"}, gpu={"type": "H100-80GB"}, maxModelLen=16384)
    assert isinstance(result, PlanErrors)
    assert result.errors[0].field == "spec.maxModelLen" and "8192" in result.errors[0].message
