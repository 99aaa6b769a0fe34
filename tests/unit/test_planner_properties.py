"""Property test: any spec, valid or not, yields a Plan or field-named PlanErrors, never an exception."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmop.catalog.gpus import GPUS
from llmop.catalog.models import MODELS
from llmop.plan.parse import parse_spec
from llmop.plan.planner import plan
from llmop.plan.types import Plan, PlanErrors

weird_text = st.text(min_size=0, max_size=40)
maybe = st.one_of

spec_strategy = st.fixed_dictionaries(
    {
        "model": st.fixed_dictionaries(
            {
                "name": maybe(
                    st.sampled_from(
                        ["meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-72B-Instruct", "org/unknown-model"]
                    ),
                    weird_text,
                )
            },
            optional={
                "architecture": maybe(
                    st.sampled_from(list(MODELS)),
                    weird_text,
                    st.fixed_dictionaries(
                        {
                            "parameters": st.integers(-5, 10**13),
                            "layers": st.integers(0, 200),
                            "hiddenSize": st.integers(0, 20000),
                            "attentionHeads": st.integers(0, 128),
                            "kvHeads": st.integers(0, 128),
                            "headDim": st.integers(0, 512),
                            "vocabSize": st.integers(0, 300000),
                            "maxPositionEmbeddings": st.integers(0, 10**6),
                        }
                    ),
                )
            },
        ),
        "gpu": st.fixed_dictionaries(
            {"type": maybe(st.sampled_from(list(GPUS)), weird_text)},
            optional={"count": maybe(st.sampled_from(["auto", 1, 2, 4, 8]), st.integers(-3, 20), weird_text)},
        ),
    },
    optional={
        "engine": maybe(st.sampled_from(["vllm", "tgi"]), weird_text),
        "engineVersion": maybe(st.sampled_from(["0.11.0", "0.27.0", "0.33.0", "3.3.7", "9.9.9"]), weird_text),
        "quantization": maybe(st.sampled_from(["none", "fp8", "awq", "gptq", "int8", "nf4", "fp4"]), weird_text),
        "maxModelLen": maybe(st.integers(-10, 2_000_000), weird_text),
        "replicas": st.fixed_dictionaries({}, optional={"min": st.integers(-2, 20), "max": st.integers(-2, 20)}),
        "slo": st.fixed_dictionaries(
            {},
            optional={
                "decodeLatency": st.fixed_dictionaries(
                    {"targetMs": maybe(st.floats(allow_nan=True), st.integers(-5, 1000))},
                    optional={"percentile": st.integers(0, 100), "window": weird_text},
                )
            },
        ),
        "engineArgs": st.lists(
            maybe(weird_text, st.sampled_from(["--port", "-tp", "--enforce-eager", "8"])), max_size=6
        ),
    },
)


def _check(spec: dict[str, Any]) -> None:
    parsed = parse_spec(spec)
    result = parsed if isinstance(parsed, PlanErrors) else plan(parsed)
    assert isinstance(result, Plan | PlanErrors)
    if isinstance(result, PlanErrors):
        assert result.errors
        for error in result.errors:
            assert error.field.startswith("spec") and error.message
    else:
        assert result.tensor_parallel in (1, 2, 4, 8) and result.decode_floor_ms > 0
        assert result.kv_cache_tokens >= result.max_model_len


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec_strategy)
def test_planner_total(spec: dict[str, Any]) -> None:
    _check(spec)


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
        max_leaves=20,
    )
)
def test_planner_total_on_garbage(value: Any) -> None:
    parsed = parse_spec(value)
    assert isinstance(parsed, PlanErrors) or isinstance(plan(parsed), Plan | PlanErrors)
