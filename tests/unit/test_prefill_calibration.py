"""The planner's prefill prior against the H200 measurement (bench/results/prefill-h200.json), and the doc's table
against that file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmop.autoscale.capacity import CapacityModel
from llmop.plan.parse import parse_spec
from llmop.plan.planner import plan
from llmop.plan.types import Plan

ROOT = Path(__file__).resolve().parents[2]
MEASURED = json.loads((ROOT / "bench" / "results" / "prefill-h200.json").read_text(encoding="utf-8"))


def _graph_ms(tokens: int, context: int) -> float:
    row = next(r for r in MEASURED["rows"] if (r["tokens"], r["context"]) == (tokens, context))
    return float(row["graph"]["ms"])


def _h200_8b() -> CapacityModel:
    spec = parse_spec({"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}, "engine": "vllm", "gpu": {"type": "H200"},
                       "maxModelLen": 8192})  # fmt: skip
    result = plan(spec)  # type: ignore[arg-type]
    assert isinstance(result, Plan), result
    return CapacityModel.from_plan(result)


def test_the_measurement_is_an_h200_with_llama_3_8b_shapes() -> None:
    assert (MEASURED["gpu"], MEASURED["dense_bf16_peak_tflops"], MEASURED["sm_count"]) == ("NVIDIA H200", 989.0, 132)
    assert len(MEASURED["rows"]) == 10 and all("graph" in row for row in MEASURED["rows"])


@pytest.mark.parametrize("tokens", [1024, 2048, 4096, 8192])
def test_the_planners_prefill_prior_is_within_10_percent_of_an_empty_cache_chunk(tokens: int) -> None:
    model = _h200_8b()
    assert model.prefill_ms_per_token == pytest.approx(2 * 8_030_261_248 / (989e12 * 0.5) * 1e3, rel=1e-12)
    planned = tokens * model.prefill_ms_per_token
    assert planned == pytest.approx(_graph_ms(tokens, 0), rel=0.10)


def test_the_planner_has_no_attention_term_so_a_long_cache_costs_more_than_it_says() -> None:
    planned = 2048 * _h200_8b().prefill_ms_per_token
    assert [round(_graph_ms(2048, c) / planned, 2) for c in (2048, 6144, 14336)] == [1.13, 1.38, 1.80]


def test_the_docs_table_is_the_measurement() -> None:
    text = (ROOT / "docs" / "prefill-calibration.md").read_text(encoding="utf-8")
    for row in MEASURED["rows"]:
        graph = row["graph"]
        line = (
            f"| {row['tokens']} | {row['context']} | {graph['ms']:.2f} | {graph['tokens_per_s']:,} | "
            f"{graph['mfu']:.2f} | {graph['mfu_2p']:.2f} |"
        )
        assert line in text, line
