"""vLLM 0.33.0: llmop's `vllm serve` argv/env must pass vLLM's own parser and config validation."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

from llmop.engines.vllm import FINE_ITL_BUCKETS_S, FINE_TTFT_BUCKETS_S
from llmop_dev.engine_check import EngineCheckUnavailable, check_vllm_argv, vllm_venv_dir, vllm_venv_python

pytestmark = pytest.mark.engine

GOOD = [
    "meta-llama/Llama-3.1-8B-Instruct",
    "--quantization",
    "fp8",
    "--tensor-parallel-size",
    "2",
    "--max-model-len",
    "8192",
    "--port",
    "8000",
    "--attention-backend",
    "FLASH_ATTN",
    "--dtype",
    "bfloat16",
]
M = "Qwen/Qwen2.5-7B-Instruct"

POSITIVE: dict[str, list[str]] = {
    "good": GOOD,
    "flashinfer": [M, "--attention-backend", "FLASHINFER"],
    "triton-attn": [M, "--attention-backend", "TRITON_ATTN"],
    "fa3-config": [M, "--attention-config", '{"flash_attn_version": 3}'],
    "kv-fp8-half": [M, "--kv-cache-dtype", "fp8", "--dtype", "half"],
    "awq-marlin": [M, "--quantization", "awq_marlin", "--dtype", "bfloat16"],
    "awq": [M, "--quantization", "awq"],
    "gptq-marlin": [M, "--quantization", "gptq_marlin"],
    "gptq": [M, "--quantization", "gptq"],
    "compressed-tensors": [M, "--quantization", "compressed-tensors"],
    "frontend-flags": [
        M,
        "--served-model-name",
        "qwen",
        "--revision",
        "main",
        "--download-dir",
        "/models",
        "--gpu-memory-utilization",
        "0.9",
        "--max-num-seqs",
        "256",
        "--enable-prefix-caching",
        "--uvicorn-log-level",
        "warning",
        "--host",
        "0.0.0.0",
    ],
    "load-format": [M, "--load-format", "safetensors"],
}

NEGATIVE: dict[str, tuple[list[str], dict[str, str], str]] = {
    "bitsandbytes": ([M, "--quantization", "bitsandbytes"], {}, "Invalid quantization method"),
    "xformers": ([M, "--attention-backend", "XFORMERS"], {}, "XFORMERS"),
    "kv-int8": ([M, "--kv-cache-dtype", "int8"], {}, "Invalid kv_cache_dtype"),
    "unknown-flag": ([M, "--foo"], {}, "unrecognized arguments: --foo"),
    "dtype-choice": ([M, "--dtype", "fp8"], {}, "invalid choice"),
    "load-format-gguf": ([M, "--load-format", "gguf"], {}, "--load-format 'gguf'"),
    "deprecated-quant": ([M, "--quantization", "fbgemm_fp8"], {}, "--allow-deprecated-quantization"),
    "backend-twice": (
        [M, "--attention-backend", "FLASH_ATTN", "--attention-config", '{"backend": "FLASHINFER"}'],
        {},
        "mutually exclusive",
    ),
    "fa-version-5": ([M, "--attention-config", '{"flash_attn_version": 5}'], {}, "flash_attn_version"),
    "gpu-mem-over-1": ([M, "--gpu-memory-utilization", "1.5"], {}, "gpu_memory_utilization"),
    "removed-env": ([M], {"VLLM_ATTENTION_BACKEND": "FLASH_ATTN"}, "unknown vLLM environment variable"),
    "bad-env-value": ([M], {"VLLM_WORKER_MULTIPROC_METHOD": "thread"}, "VLLM_WORKER_MULTIPROC_METHOD"),
    "removed-flag": ([M, "--swap-space", "4"], {}, "unrecognized arguments"),
    "quant-dtype": ([M, "--quantization", "fp8", "--dtype", "float32"], {}, "not supported for --quantization fp8"),
}


@functools.cache
def _venv_ready() -> bool:
    return vllm_venv_python() is not None


@pytest.fixture(scope="module")
def require_venv(engine_check_required: bool) -> None:
    if not _venv_ready():
        msg = f"vLLM venv missing at {vllm_venv_dir()}; run scripts/vllm-venv.sh"
        if engine_check_required:
            pytest.fail(msg + " (REQUIRE_ENGINE_CHECK=1)")
        pytest.skip(msg)


@pytest.fixture(scope="module")
def hand_results(require_venv: None) -> dict[str, dict[str, Any]]:
    """All hand-written cases in one subprocess (importing vLLM costs ~15 s)."""
    cases = [{"name": n, "args": a, "env": {"HF_HOME": "/models"}} for n, a in POSITIVE.items()]
    cases += [{"name": n, "args": a, "env": e} for n, (a, e, _) in NEGATIVE.items()]
    return {r["name"]: r for r in check_vllm_argv(cases)}


@pytest.fixture(scope="module")
def example_results(
    require_venv: None, vllm_example_plans: list[tuple[str, dict[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """Every vLLM example's argv/env checked in one subprocess."""
    cases = [
        {"name": name, "args": doc["plan"]["args"], "env": doc["plan"].get("env") or {}}
        for name, doc in vllm_example_plans
        if "_error" not in doc
    ]
    return {r["name"]: r for r in check_vllm_argv(cases)} if cases else {}


def test_good_argv_parses_to_expected_values(hand_results: dict[str, dict[str, Any]]) -> None:
    r = hand_results["good"]
    assert r["ok"], r["errors"]
    p = r["parsed"]
    assert p["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert p["quantization"] == "fp8"
    assert p["tensor_parallel_size"] == 2
    assert p["max_model_len"] == 8192
    assert p["port"] == 8000
    assert p["attention_backend"] == "FLASH_ATTN"
    assert p["dtype"] == "bfloat16"
    assert p["kv_cache_dtype"] == "auto"
    assert p["quantization_min_capability"] == 75


@pytest.mark.parametrize("name", sorted(POSITIVE))
def test_valid_argv_accepted(hand_results: dict[str, dict[str, Any]], name: str) -> None:
    r = hand_results[name]
    assert r["ok"], r["errors"]


def test_attention_config_sets_fa_version(hand_results: dict[str, dict[str, Any]]) -> None:
    assert hand_results["fa3-config"]["parsed"]["flash_attn_version"] == 3
    assert hand_results["kv-fp8-half"]["parsed"]["kv_cache_dtype"] == "fp8"


@pytest.mark.parametrize("name", sorted(NEGATIVE))
def test_invalid_argv_rejected(hand_results: dict[str, dict[str, Any]], name: str) -> None:
    r = hand_results[name]
    needle = NEGATIVE[name][2]
    assert not r["ok"], f"{name} should be rejected: {r}"
    assert any(needle in e for e in r["errors"]), r["errors"]


def test_vllm_examples_accepted(
    vllm_example: tuple[str, dict[str, Any]], example_results: dict[str, dict[str, Any]]
) -> None:
    name, doc = vllm_example
    assert "_error" not in doc, doc.get("_error")
    plan = doc["plan"]
    assert (plan.get("command") or []) in ([], ["vllm", "serve"]), plan.get("command")
    r = example_results[name]
    assert r["ok"], "\n".join(r["errors"])
    if plan.get("tensorParallel") is not None:
        assert r["parsed"]["tensor_parallel_size"] == plan["tensorParallel"]
    if plan.get("quantizationFlag"):
        assert r["parsed"]["quantization"] == plan["quantizationFlag"]
    # vLLM's own parser reads llmop's latency ladders as the families it knows, edge for edge
    assert r["parsed"]["custom_histogram_buckets"] == {
        "inter_token_latency": list(FINE_ITL_BUCKETS_S),
        "time_to_first_token": list(FINE_TTFT_BUCKETS_S),
    }


def test_missing_venv_raises_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLMOP_VLLM_VENV", str(tmp_path / "nope"))
    with pytest.raises(EngineCheckUnavailable, match=r"vllm-venv\.sh"):
        check_vllm_argv([{"name": "x", "args": [M], "env": {}}])


# ------------------------------------------------------- the planner's verdicts against the real parser


def _corpus_cases() -> list[dict[str, Any]]:
    """Each unit-corpus engineArgs case appended to an argv llmop renders, for vLLM's own parser."""
    from support.engine_args_corpus import VLLM_ACCEPTED, VLLM_REFUSED, VLLM_REFUSED_AMBIGUOUS

    base = [M, "--max-model-len", "8192"]
    cases = [{"name": f"accepted:{' '.join(a)}", "args": base + a, "env": {}} for a in VLLM_ACCEPTED]
    cases += [{"name": f"refused:{' '.join(a)}", "args": base + a, "env": {}} for a, _, _ in VLLM_REFUSED]
    cases += [{"name": f"ambiguous:{' '.join(a)}", "args": base + a, "env": {}} for a, _, _ in VLLM_REFUSED_AMBIGUOUS]
    return cases


@pytest.fixture(scope="module")
def corpus_results(require_venv: None) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in check_vllm_argv(_corpus_cases())}


def test_planner_verdicts_match_vllms_parser(corpus_results: dict[str, dict[str, Any]]) -> None:
    """engineArgs the planner accepts parse with vLLM 0.33.0; those it refuses are refused by vLLM too, except a
    repeated flag, which vLLM takes (keeping the last value) and llmop refuses as ambiguous."""
    from llmop.plan.parse import parse_spec
    from llmop.plan.planner import plan
    from llmop.plan.types import Plan

    wrong = []
    for case in _corpus_cases():
        kind, _, _ = case["name"].partition(":")
        user = case["args"][3:]
        spec = parse_spec({"model": {"name": M}, "gpu": {"type": "H100-80GB"}, "maxModelLen": 8192, "engineArgs": user})
        verdict = plan(spec)  # type: ignore[arg-type]
        real = corpus_results[case["name"]]
        if isinstance(verdict, Plan) != (kind == "accepted"):
            wrong.append(f"planner {'accepted' if isinstance(verdict, Plan) else 'refused'} {user}")
        if kind == "accepted" and not real["ok"]:
            wrong.append(f"vLLM refused {user} that the planner accepts: {real['errors']}")
        if kind == "refused" and real["ok"]:
            wrong.append(f"vLLM accepted {user} that the planner refuses")
        if kind == "ambiguous" and not real["ok"]:
            wrong.append(f"vLLM refused the repeat {user}: {real['errors']}")
    assert not wrong, "\n".join(wrong)


def test_planner_argv_with_accepted_engine_args_parses(require_venv: None) -> None:
    """The full argv the planner renders with each accepted engineArgs case parses with vLLM's parser."""
    from llmop.plan.parse import parse_spec
    from llmop.plan.planner import plan
    from llmop.plan.types import Plan
    from support.engine_args_corpus import VLLM_ACCEPTED

    cases = []
    for args in VLLM_ACCEPTED:
        spec = parse_spec({"model": {"name": M}, "gpu": {"type": "H100-80GB"}, "engineArgs": args})
        result = plan(spec)  # type: ignore[arg-type]
        assert isinstance(result, Plan), (args, result)
        cases.append({"name": " ".join(args), "args": list(result.args), "env": result.env})
    bad = [f"{r['name']}: {r['errors']}" for r in check_vllm_argv(cases) if not r["ok"]]
    assert not bad, "\n".join(bad)
