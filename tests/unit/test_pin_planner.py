"""plan/planner.py pinned: the figures the autoscaler depends on for one model per engine (memory split, KV-cache
tokens, decode floor, concurrency within the SLO and its KV-cache cap, mean context, start-up time), the tensor-
parallel choice, and every refusal and warning word for word."""

from __future__ import annotations

from dataclasses import asdict
from itertools import pairwise
from typing import Any

import pytest

from llmop.catalog.engines import ENGINES, Engine
from llmop.catalog.hf_config import CheckpointInfo, HubFailure
from llmop.catalog.models import MODELS
from llmop.catalog.quantization import Quantization
from llmop.plan.parse import parse_spec
from llmop.plan.planner import plan, resolve_architecture
from llmop.plan.types import Finding, Plan, PlanErrors

VLLM = ENGINES[Engine.VLLM].pinned_version
TGI = ENGINES[Engine.TGI].pinned_version
LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"


def _plan(name: str = "chat", **spec: Any) -> Plan | PlanErrors:
    body: dict[str, Any] = {"model": {"name": LLAMA_8B}, "gpu": {"type": "H100-80GB"}, **spec}
    parsed = parse_spec(body)
    assert not isinstance(parsed, PlanErrors), parsed
    return plan(parsed, name)


def _accepted(**spec: Any) -> Plan:
    result = _plan(**spec)
    assert isinstance(result, Plan), result
    return result


def _figures(result: Plan) -> dict[str, Any]:
    """The planner's own figures (the engines' argv and env are the engine adapters' to pin)."""
    skipped = ("args", "command", "env", "decode_model", "warnings")
    return {key: value for key, value in asdict(result).items() if key not in skipped}


def _findings(findings: tuple[Finding, ...]) -> list[tuple[str, str]]:
    return [(f.field, f.message) for f in findings]


def test_vllm_llama_8b_fp8_on_h100_pins_every_figure() -> None:
    result = _accepted(quantization="fp8", maxModelLen=8192, slo={"decodeLatency": {"targetMs": 50}},
                       replicas={"min": 2, "max": 6})  # fmt: skip
    assert _figures(result) == {
        "name": "chat",
        "engine": Engine.VLLM,
        "engine_version": VLLM,
        "image": f"ghcr.io/llmop/vllm:{VLLM}-sm90",
        "gpu_type": "H100-80GB",
        "tensor_parallel": 1,
        "dtype": "bfloat16",
        "attention_backend": "flash-attention-3",
        "quantization": "fp8",
        "quantization_flag": "fp8",
        "model_name": LLAMA_8B,
        "model_revision": None,
        "token_secret": None,
        "max_model_len": 8192,
        "port": 8000,
        "health_path": "/health",
        "metrics_path": "/metrics",
        "node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        "weights_gib": pytest.approx(8.457279205, rel=1e-9),
        "kv_cache_gib": pytest.approx(63.318384857, rel=1e-9),
        "kv_cache_tokens": 518_704,
        "memory_per_gpu_gib": pytest.approx(73.2756640625, rel=1e-12),  # 81559 MiB x 0.92
        "decode_floor_ms": pytest.approx(3.911047027, rel=1e-9),
        "step_ms_at_target_concurrency": pytest.approx(26.407650154, rel=1e-9),
        "max_concurrency_at_slo": 126,  # the KV cache's cap: 518704 tokens // 4096, not the latency's
        "slo_target_ms": 50.0,
        "min_replicas": 2,
        "max_replicas": 6,
        "startup_seconds": 80,  # 30 s + 9.08 GB / 0.18 GB/s
        "mean_context_tokens": 4096.0,  # half of maxModelLen
    }
    model = result.decode_model
    assert (model.weight_bytes, model.kv_bytes_per_token, model.flops_per_token) == (9_080_934_400.0, 131_072,
                                                                                     16_060_522_496)  # fmt: skip
    assert (model.layers, model.tensor_parallel, model.kernel_efficiency, model.gpu.name) == (32, 1, 0.88, "H100-80GB")
    assert result.args[:1] == (LLAMA_8B,) and result.warnings == ()


def test_tgi_llama_8b_on_a100_pins_every_figure() -> None:
    result = _accepted(engine="tgi", gpu={"type": "A100-80GB"}, maxModelLen=8192,
                       slo={"decodeLatency": {"targetMs": 50}})  # fmt: skip
    assert _figures(result) == {
        "name": "chat",
        "engine": Engine.TGI,
        "engine_version": TGI,
        "image": f"ghcr.io/llmop/tgi:{TGI}-sm80",
        "gpu_type": "A100-80GB",
        "tensor_parallel": 1,
        "dtype": "bfloat16",
        "attention_backend": "flashinfer",
        "quantization": "none",
        "quantization_flag": None,
        "model_name": LLAMA_8B,
        "model_revision": None,
        "token_secret": None,
        "max_model_len": 8192,
        "port": 8080,
        "health_path": "/health",
        "metrics_path": "/metrics",
        "node_selector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
        "weights_gib": pytest.approx(14.957527161, rel=1e-9),
        "kv_cache_gib": pytest.approx(55.542472839, rel=1e-9),
        "kv_cache_tokens": 455_003,
        "memory_per_gpu_gib": pytest.approx(72.0, rel=1e-12),  # 81920 MiB x 0.9
        "decode_floor_ms": pytest.approx(9.850017345, rel=1e-9),
        "step_ms_at_target_concurrency": pytest.approx(43.773135810, rel=1e-9),
        "max_concurrency_at_slo": 111,  # 455003 // 4096
        "slo_target_ms": 50.0,
        "min_replicas": 1,
        "max_replicas": 1,
        "startup_seconds": 119,  # 30 s + 16.06 GB / 0.18 GB/s
        "mean_context_tokens": 4096.0,
    }
    model = result.decode_model
    assert (model.weight_bytes, model.kernel_efficiency, model.tensor_parallel) == (16_060_522_496.0, 1.0, 1)


def test_a_tight_slo_bounds_concurrency_by_latency_under_the_kv_cap() -> None:
    result = _accepted(quantization="fp8", maxModelLen=8192, slo={"decodeLatency": {"targetMs": 20}})
    assert result.max_concurrency_at_slo == 90
    assert result.step_ms_at_target_concurrency == pytest.approx(19.977729382, rel=1e-9)
    assert result.decode_model.step_ms(91, 4096.0) > 20.0  # one more would miss the target


def test_no_slo_means_no_concurrency_and_a_floor_above_the_slo_means_zero() -> None:
    none = _accepted(slo={})
    assert (none.max_concurrency_at_slo, none.step_ms_at_target_concurrency, none.slo_target_ms) == (None, None, None)
    below = _accepted(gpu={"type": "H100-80GB", "count": 1}, slo={"decodeLatency": {"targetMs": 2}})
    assert (below.max_concurrency_at_slo, below.step_ms_at_target_concurrency) == (0, None)
    assert _findings(below.warnings) == [
        ("spec.slo.decodeLatency.targetMs",
         f"SLO 2 ms is below the decode floor of 6.0 ms per token for {LLAMA_8B} on 1 x H100-80GB (none); no number "
         "of replicas can meet it. Raise the target, quantize, or use more GPUs per replica"),
    ]  # fmt: skip


def test_replicas_max_is_at_least_min_and_the_token_secret_is_passed_on() -> None:
    disabled = _accepted(replicas={"min": 3, "max": 1}, autoscaling={"enabled": False})
    assert (disabled.min_replicas, disabled.max_replicas) == (3, 3)
    token = _accepted(model={"name": LLAMA_8B, "revision": "main", "tokenSecretRef": {"name": "hf", "key": "T"}})
    assert (token.token_secret, token.model_revision) == (("hf", "T"), "main")


def test_auto_tensor_parallel_grows_only_as_far_as_the_slo_needs() -> None:
    assert _accepted(gpu={"type": "A100-80GB"}, slo={"decodeLatency": {"targetMs": 40}}).tensor_parallel == 1
    tight = _accepted(gpu={"type": "A100-80GB"}, slo={"decodeLatency": {"targetMs": 6}})
    assert (tight.tensor_parallel, tight.max_concurrency_at_slo) == (2, 1)
    unreachable = _accepted(gpu={"type": "A100-80GB"}, slo={"decodeLatency": {"targetMs": 1}})
    assert unreachable.tensor_parallel == 1  # no count reaches it: the smallest that fits, and a warning
    big = _accepted(model={"name": LLAMA_70B}, gpu={"type": "H100-80GB"}, maxModelLen=8192)
    assert (big.tensor_parallel, big.kv_cache_tokens) == (2, 36_486)
    assert big.decode_model.communication_ms() == pytest.approx(2 * 80 * 0.012)
    explicit = _accepted(model={"name": LLAMA_70B}, gpu={"type": "H100-80GB", "count": 4}, maxModelLen=8192)
    assert explicit.tensor_parallel == 4 and explicit.startup_seconds == 30 + 141_107_412_992 // 4 // 180_000_000


@pytest.mark.parametrize(
    ("spec", "findings"),
    [
        ({"gpu": {"type": "auto"}},
         [("spec.gpu.type", "auto is resolved by llmop's chooser (sizing/choose.py) before planning")]),
        ({"quantization": "auto"},
         [("spec.quantization", "auto is resolved by llmop's chooser (sizing/choose.py) before planning")]),
        ({"engineVersion": "v0.10.0"},
         [("spec.engineVersion", f"vLLM 0.10.0 is not supported; llmop supports vLLM 0.11.0 to {VLLM} (default "
           f"{VLLM})")]),
        ({"model": {"name": "org/x", "architecture": "lama-3.1-8b"}},
         [("spec.model.architecture", "'lama-3.1-8b' is not a catalog key (did you mean llama-3.1-8b or llama-3-8b?);"
           f" use one of {', '.join(MODELS)} or give the numbers (parameters, layers, hiddenSize, attentionHeads, "
           "kvHeads, headDim, vocabSize, maxPositionEmbeddings)")]),
        ({"maxModelLen": 200_000},
         [("spec.maxModelLen", "200000 is longer than the model's context (131072 tokens); use at most 131072")]),
        ({"maxModelLen": 131_073, "replicas": {"min": 3, "max": 2}},
         [("spec.maxModelLen", "131073 is longer than the model's context (131072 tokens); use at most 131072"),
          ("spec.replicas", "min 3 is above max 2; set min <= max")]),
        ({"engine": "tgi", "gpu": {"type": "B200"}},
         [("spec.gpu.type", "TGI has no build for B200 (blackwell, sm100): its images target CUDA 12.4 and "
           "sm75-sm90. Use engine vllm, or gpu.type T4/A10G/L4/L40S/A100-40GB/A100-80GB/H100-80GB/H100-PCIe/H200")]),
        ({"quantization": "nf4"},
         [("spec.quantization", f"quantization nf4 is not available in vLLM {VLLM} (removed in 0.28.0); use engine "
           "tgi, or quantization fp8/awq/gptq")]),
        ({"model": {"name": "Qwen/Qwen2.5-7B-Instruct"}, "gpu": {"type": "L4", "count": 8}},
         [("spec.gpu.count", "8 GPUs cannot shard 28 attention heads and 4 KV heads evenly; use 1/2/4 or auto")]),
        ({"model": {"name": LLAMA_70B}, "gpu": {"type": "H100-80GB", "count": 1}},
         [("spec.gpu.count", "1 x H100-80GB cannot hold 131.4 GiB of weights plus the KV cache of one 8192-token "
           "sequence (-59.6 GiB left for KV cache); use gpu.count 2 or auto, or lower spec.maxModelLen")]),
        ({"model": {"name": LLAMA_70B}, "gpu": {"type": "T4", "count": 1}},
         [("spec.gpu.count", "1 x T4 cannot hold 131.4 GiB of weights plus the KV cache of one 8192-token sequence "
           "(-119.1 GiB left for KV cache); use a bigger GPU or a smaller quantization, or lower spec.maxModelLen")]),
        ({"model": {"name": LLAMA_70B}, "gpu": {"type": "T4"}, "maxModelLen": 8192},
         [("spec.gpu.count", "131.4 GiB of weights plus KV cache for 4 sequences of 8192 tokens do not fit on up to "
           "8 x T4 (15 GiB each); use a GPU with more memory, a 4-bit quantization (awq/gptq), or a smaller "
           "spec.maxModelLen")]),
    ],
)  # fmt: skip
def test_each_refusal_word_for_word(spec: dict[str, Any], findings: list[tuple[str, str]]) -> None:
    result = _plan(**spec)
    assert isinstance(result, PlanErrors) and _findings(result.errors) == findings
    assert result.reason == "PlanRefused"


@pytest.mark.parametrize(
    ("name", "shown"),
    [("Chat_1", "'Chat_1'"), ("a" * 64, repr("a" * 64)), ("a" * 80, repr("a" * 80)),
     ("a" * 81, repr("a" * 70) + "... (81 characters)"), ("1abc", "'1abc'"), ("trailing-", "'trailing-'")],
)  # fmt: skip
def test_a_name_that_cannot_name_a_service_is_refused_and_shown_shortened(name: str, shown: str) -> None:
    result = _plan(name)
    assert isinstance(result, PlanErrors)
    assert _findings(result.errors) == [
        ("metadata.name", f"{shown} cannot name the engine's Service and label its pods; use at most 63 lower-case "
         "letters, digits and '-', starting with a letter (a DNS-1035 label)"),
    ]  # fmt: skip
    assert isinstance(_plan("a" * 63), Plan) and isinstance(_plan("a-1"), Plan) and isinstance(_plan("a"), Plan)


def test_each_warning_word_for_word() -> None:
    awq = _accepted(quantization="awq")
    assert _findings(awq.warnings) == [
        ("spec.model.name", f"quantization awq loads a pre-quantized checkpoint; '{LLAMA_8B}' does not look like one "
         "(no awq in its name). The pod fails at start-up if the checkpoint has no matching quantization_config"),
    ]  # fmt: skip
    named = _accepted(quantization="awq", model={"name": "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4"})
    assert named.warnings == ()
    t4 = _accepted(
        gpu={"type": "T4"},
        quantization="awq",
        model={"name": "org/llama-awq", "architecture": "llama-3.1-8b"},
        maxModelLen=4096,
    )
    assert _findings(t4.warnings) == [
        ("spec.gpu.type", "T4 (cc 7.5) cannot run FlashAttention-2 (needs cc 8.0); vLLM uses TRITON_ATTN instead, "
         "with slower prefill"),
        ("spec.gpu.type", "T4 has no bfloat16 (needs cc 8.0); serving in float16"),
    ]  # fmt: skip
    assert t4.dtype == "float16"
    tgi = _accepted(engine="tgi", slo={"decodeLatency": {"targetMs": 40}})
    assert _findings(tgi.warnings) == [
        ("spec.slo.decodeLatency.targetMs", "SLO 40 ms falls inside TGI's 29.2-43.8 ms batch-step bucket (TGI's "
         "buckets are fixed, 1.5x apart); the autoscaler judges it conservatively: a breach when more than the SLO's "
         "share of batch steps is above 29.2 ms. A target on an edge (29.2 or 43.8 ms) is judged exactly"),
    ]  # fmt: skip


def test_a_known_checkpoint_silences_the_name_warning_and_a_hub_failure_names_its_reason() -> None:
    parsed = parse_spec({"model": {"name": "org/unlisted"}, "gpu": {"type": "H100-80GB"}, "quantization": "awq"})
    assert not isinstance(parsed, PlanErrors)
    awq = CheckpointInfo("org/unlisted", "llama", MODELS["llama-3.1-8b"].architecture, Quantization.AWQ, "awq")
    known = plan(parsed, "chat", checkpoint=awq)
    assert isinstance(known, Plan) and known.warnings == () and known.quantization_flag == "awq_marlin"
    plain = CheckpointInfo("org/unlisted", "llama", MODELS["llama-3.1-8b"].architecture, Quantization.NONE, None)
    mismatch = plan(parsed, "chat", checkpoint=plain)
    assert isinstance(mismatch, PlanErrors) and _findings(mismatch.errors) == [
        ("spec.quantization", "awq loads a pre-quantized checkpoint, but config.json of 'org/unlisted' has no "
         "quantization_config (16-bit weights); use a AWQ checkpoint of the model, or quantization none or fp8"),
    ]  # fmt: skip
    failure = HubFailure("org/unlisted", "HubUnreachable", "huggingface.co: timed out")
    refused = plan(parsed, "chat", checkpoint=failure)
    assert isinstance(refused, PlanErrors) and refused.reason == "HubUnreachable"
    assert _findings(refused.errors) == [("spec.model.name", "huggingface.co: timed out")]
    unknown = plan(parsed, "chat")
    assert isinstance(unknown, PlanErrors) and unknown.reason == "PlanRefused"
    both = plan(parse_spec({**parsed.model_dump(by_alias=True), "engineVersion": "0.1.0"}), "chat",  # type: ignore[arg-type]
                checkpoint=failure)  # fmt: skip
    assert isinstance(both, PlanErrors) and both.reason == "HubUnreachable" and len(both.errors) == 2


def test_architecture_from_numbers_a_catalog_key_or_the_catalog_name() -> None:
    numbers = {"parameters": 1_100_000_000, "layers": 22, "hiddenSize": 2048, "attentionHeads": 32, "kvHeads": 4,
               "headDim": 64, "vocabSize": 32000, "maxPositionEmbeddings": 2048, "tiedEmbeddings": True}  # fmt: skip
    spec = parse_spec({"model": {"name": "org/tiny", "architecture": numbers}, "gpu": {"type": "L4"}})
    arch = resolve_architecture(spec)  # type: ignore[arg-type]
    assert not isinstance(arch, Finding)
    assert (arch.parameters, arch.layers, arch.hidden_size, arch.attention_heads, arch.kv_heads, arch.head_dim,
            arch.vocab_size, arch.max_position_embeddings, arch.tied_embeddings) == (
        1_100_000_000, 22, 2048, 32, 4, 64, 32000, 2048, True)  # fmt: skip
    keyed = parse_spec({"model": {"name": "org/x", "architecture": " Llama-3.1-8B "}, "gpu": {"type": "L4"}})
    assert resolve_architecture(keyed) == MODELS["llama-3.1-8b"].architecture  # type: ignore[arg-type]
    named = parse_spec({"model": {"name": LLAMA_70B}, "gpu": {"type": "L4"}})
    assert resolve_architecture(named) == MODELS["llama-3.1-70b"].architecture  # type: ignore[arg-type]


def test_an_explicit_count_needs_room_for_one_full_sequence_exactly() -> None:
    # 70B bf16 on 2 x H100 leaves KV-cache room for exactly 36486 tokens
    one = _accepted(model={"name": LLAMA_70B}, gpu={"type": "H100-80GB", "count": 2}, maxModelLen=36_486)
    assert (one.tensor_parallel, one.kv_cache_tokens) == (2, 36_486)
    assert _accepted(model={"name": LLAMA_70B}, gpu={"type": "H100-80GB", "count": 2}, maxModelLen=32_768)
    for length in (32_768, 36_486):  # the hint names the smallest count with room for one sequence: 2, not 4
        refused = _plan(model={"name": LLAMA_70B}, gpu={"type": "H100-80GB", "count": 1}, maxModelLen=length)
        assert isinstance(refused, PlanErrors)
        assert refused.errors[0].message.endswith("use gpu.count 2 or auto, or lower spec.maxModelLen")


def test_auto_takes_a_count_with_room_for_exactly_four_sequences() -> None:
    exact = _accepted(quantization="fp8", maxModelLen=518_704 // 4)  # 4.0 sequences on one H100
    assert (exact.tensor_parallel, exact.kv_cache_tokens) == (1, 518_704)


def test_an_slo_exactly_at_the_floor_is_met_by_one_gpu_without_a_warning() -> None:
    floor = _accepted(quantization="fp8").decode_floor_ms
    at_floor = _accepted(quantization="fp8", slo={"decodeLatency": {"targetMs": floor}})
    assert (at_floor.tensor_parallel, at_floor.warnings, at_floor.max_concurrency_at_slo) == (1, (), 0)


def test_refusals_carry_the_warnings_found_before_them() -> None:
    for spec in ({"quantization": "nf4"}, {"name": "Bad_Name"}, {"maxModelLen": 200_000}):
        result = _plan(**spec)  # type: ignore[arg-type]
        assert isinstance(result, PlanErrors) and result.warnings == (), spec
    t4 = _plan(model={"name": LLAMA_70B}, gpu={"type": "T4"}, maxModelLen=8192)
    assert isinstance(t4, PlanErrors) and _findings(t4.warnings) == [
        ("spec.gpu.type", "T4 (cc 7.5) cannot run FlashAttention-2 (needs cc 8.0); vLLM uses TRITON_ATTN instead, "
         "with slower prefill"),
        ("spec.gpu.type", "T4 has no bfloat16 (needs cc 8.0); serving in float16"),
    ]  # fmt: skip


def test_a_rule_warning_and_every_checkpoint_hint_are_named() -> None:
    a100 = _accepted(gpu={"type": "A100-80GB"}, quantization="fp8")
    assert _findings(a100.warnings) == [
        ("spec.quantization", "no FP8 tensor cores below cc 8.9: vLLM runs weight-only FP8 (Marlin W8A16); memory "
         "and bandwidth are saved, compute stays 16-bit"),
    ]  # fmt: skip
    int8 = _accepted(engineVersion="0.27.0", quantization="int8")
    assert _findings(int8.warnings)[1] == (
        "spec.model.name", f"quantization int8 loads a pre-quantized checkpoint; '{LLAMA_8B}' does not look like one "
        "(no bnb/bitsandbytes/8bit/int8 in its name). The pod fails at start-up if the checkpoint has no matching "
        "quantization_config",
    )  # fmt: skip


def _follows(args: tuple[str, ...], flag: str, value: str) -> bool:
    return any(a == flag and b == value for a, b in pairwise(args))


def test_the_launch_gets_the_revision_the_tensor_parallel_size_and_the_quantization_flag() -> None:
    result = _accepted(quantization="awq", model={"name": LLAMA_8B, "revision": "abc123"},
                       gpu={"type": "H100-80GB", "count": 2}, engineArgs=["--enforce-eager"])  # fmt: skip
    assert _follows(result.args, "--revision", "abc123")
    assert _follows(result.args, "--tensor-parallel-size", "2")
    assert _follows(result.args, "--quantization", "awq_marlin")
    assert result.args[-1] == "--enforce-eager"
