"""engineArgs: operator-owned flags, shell syntax, stray values and what the engine version's own parser refuses
(unknown flags, values, arity, repeats, cross-flag rules) are refused, naming the field, in the engine's words."""

from __future__ import annotations

import pytest

from llmop.catalog.engines import Engine
from llmop.engines import adapter
from llmop.engines.flags import Arity
from llmop.plan.parse import parse_spec
from llmop.plan.planner import plan
from llmop.plan.types import Plan, PlanErrors
from support.engine_args_corpus import (
    TGI_ACCEPTED,
    TGI_REFUSED,
    VLLM_ACCEPTED,
    VLLM_REFUSED,
    VLLM_REFUSED_AMBIGUOUS,
    VLLM_REFUSED_CONFIG,
)


def _plan(engine: str, args: list[str], **extra: object) -> Plan | PlanErrors:
    spec = parse_spec(
        {
            "model": {"name": "meta-llama/Llama-3.1-8B-Instruct"},
            "engine": engine,
            "gpu": {"type": "H100-80GB"},
            "engineArgs": args,
            **extra,
        }
    )
    return spec if isinstance(spec, PlanErrors) else plan(spec)


@pytest.mark.parametrize(
    ("engine", "args", "index", "needle"),
    [
        ("vllm", ["--tensor-parallel-size", "4"], 0, "spec.gpu.count"),
        ("vllm", ["--enforce-eager", "--quantization=awq"], 1, "spec.quantization"),
        ("vllm", ["-tp", "2"], 0, "spec.gpu.count"),
        ("vllm", ["--port", "9000"], 0, "cannot be overridden"),
        ("tgi", ["--num-shard", "2"], 0, "spec.gpu.count"),
        ("tgi", ["--max-total-tokens", "99"], 0, "spec.maxModelLen"),
        ("vllm", ["--served-model-name", "x; rm -rf /"], 1, "shell syntax"),
        ("vllm", ["--chat-template", "$(curl evil)"], 1, "shell syntax"),
        ("vllm", ["stray"], 0, "no flag before it"),
    ],
)
def test_refused(engine: str, args: list[str], index: int, needle: str) -> None:
    result = _plan(engine, args)
    assert isinstance(result, PlanErrors)
    assert any(e.field == f"spec.engineArgs[{index}]" and needle in e.message for e in result.errors), result.errors


def test_control_characters_refused_at_parse() -> None:
    result = _plan("vllm", ["--enforce-eager\n--port", "1"])
    assert isinstance(result, PlanErrors)
    assert result.errors[0].field.startswith("spec.engineArgs") and "control character" in result.errors[0].message


def test_allowed_args_are_appended_after_owned_flags() -> None:
    result = _plan("vllm", ["--enable-prefix-caching", "--max-num-seqs", "128", "--kv-cache-dtype=fp8"])
    assert isinstance(result, Plan)
    assert result.args[-4:] == ("--enable-prefix-caching", "--max-num-seqs", "128", "--kv-cache-dtype=fp8")


def _only_error(result: Plan | PlanErrors) -> tuple[str, str]:
    assert isinstance(result, PlanErrors), "should be refused"
    assert len(result.errors) == 1, result.errors
    return result.errors[0].field, result.errors[0].message


@pytest.mark.parametrize(("args", "index", "message"), TGI_REFUSED, ids=[" ".join(c[0]) for c in TGI_REFUSED])
def test_tgi_launcher_refusals(args: list[str], index: int, message: str) -> None:
    assert _only_error(_plan("tgi", args)) == (f"spec.engineArgs[{index}]", message)


@pytest.mark.parametrize(
    ("args", "index", "message"),
    VLLM_REFUSED + VLLM_REFUSED_CONFIG + VLLM_REFUSED_AMBIGUOUS,
    ids=[" ".join(c[0]) for c in VLLM_REFUSED + VLLM_REFUSED_CONFIG + VLLM_REFUSED_AMBIGUOUS],
)
def test_vllm_parser_refusals(args: list[str], index: int, message: str) -> None:
    assert _only_error(_plan("vllm", args)) == (f"spec.engineArgs[{index}]", message)


@pytest.mark.parametrize("args", TGI_ACCEPTED, ids=" ".join)
def test_valid_tgi_args_accepted(args: list[str]) -> None:
    result = _plan("tgi", args)
    assert isinstance(result, Plan), result.errors  # type: ignore[union-attr]
    assert result.args[-len(args) :] == tuple(args)


@pytest.mark.parametrize("args", VLLM_ACCEPTED, ids=" ".join)
def test_valid_vllm_args_accepted(args: list[str]) -> None:
    result = _plan("vllm", args)
    assert isinstance(result, Plan), result.errors  # type: ignore[union-attr]
    assert result.args[-len(args) :] == tuple(args)


def test_unknown_flag_names_the_version_checked() -> None:
    result = _plan("vllm", ["--swap-space", "4"], engineVersion="0.20.0")
    assert _only_error(result)[1] == (
        "'--swap-space' is not a vLLM 0.33.0 flag (unrecognized arguments: --swap-space); llmop checks vLLM 0.20.0 "
        "against it; remove it"
    )


def test_did_you_mean_from_the_table() -> None:
    result = _plan("tgi", ["--max-concurent-requests", "8"])
    assert _only_error(result)[1].endswith("did you mean --max-concurrent-requests?")


def test_t4_tgi_renders_the_prefill_budget_the_router_needs() -> None:
    """Paged attention turns prefill chunking off; TGI's router then refuses max_batch_prefill_tokens below
    max_input_tokens, and the launcher's default on a T4 is 4096 < 8191."""
    spec = {"quantization": "nf4", "gpu": {"type": "T4"}, "maxModelLen": 8192}
    result = _plan("tgi", [], **spec)
    assert isinstance(result, Plan)
    assert result.args[-2:] == ("--max-batch-prefill-tokens", "8192")
    short = _plan("tgi", [], **{**spec, "maxModelLen": 4096})
    assert isinstance(short, Plan) and "--max-batch-prefill-tokens" not in short.args
    own = _plan("tgi", ["--max-batch-prefill-tokens", "9000"], **spec)
    assert isinstance(own, Plan) and own.args.count("--max-batch-prefill-tokens") == 1
    field, message = _only_error(_plan("tgi", ["--max-batch-prefill-tokens", "5000"], **spec))
    assert field == "spec.engineArgs[0]"
    assert message == (
        "'--max-batch-prefill-tokens 5000' is refused by TGI 3.3.7 (`max_batch_prefill_tokens` must be >= "
        "`max_input_tokens`. Given: 5000 and 8191 (the router, once the model is loaded)); paged attention on this "
        "GPU turns prefill chunking off, so a whole prompt (up to --max-input-tokens 8191, from spec.maxModelLen) "
        "must fit in one prefill batch; use --max-batch-prefill-tokens 8191 or more, or lower spec.maxModelLen"
    )
    # With chunking on (flashinfer on an H100) a small prefill budget is fine; --speculate turns chunking off.
    assert isinstance(_plan("tgi", ["--max-batch-prefill-tokens", "2048"]), Plan)
    speculating = _plan("tgi", ["--speculate", "2", "--max-batch-prefill-tokens", "2048"])
    assert "--speculate turns prefill chunking off" in _only_error(speculating)[1]
    assert _plan("tgi", ["--speculate", "2"]).args[-4:] == (  # type: ignore[union-attr]
        "--max-batch-prefill-tokens",
        "8192",
        "--speculate",
        "2",
    )


def test_flag_tables_load() -> None:
    vllm = adapter(Engine.VLLM).flag_table((0, 33, 0))
    tgi = adapter(Engine.TGI).flag_table((3, 3, 7))
    assert (vllm.version, tgi.version) == ("0.33.0", "3.3.7")
    seqs = vllm.get("--max-num-seqs")
    assert seqs is not None and seqs.kind == "int" and seqs.arity is Arity.ONE
    caching = vllm.get("--no-enable-prefix-caching")
    assert caching is not None and caching.arity is Arity.NONE and caching.dest == "enable_prefix_caching"
    kv = tgi.get("--kv-cache-dtype")
    assert kv is not None and kv.choices == ("fp8_e4m3fn", "fp8_e5m2")
    assert all(tgi.get(flag) for flag in adapter(Engine.TGI).owned_flags if flag != "-p")
    assert all(vllm.get(flag) for flag in adapter(Engine.VLLM).owned_flags)
