"""The decode-latency model against the measured H100/H200 calibration steps, and SLO feasibility."""

from __future__ import annotations

import pytest

from llmop.catalog.calibration import CALIBRATION_MODEL, SAMPLES
from llmop.catalog.gpus import GPUS
from llmop.catalog.models import MODELS
from llmop.catalog.quantization import METHODS, Quantization
from llmop.plan.latency import DecodeModel
from llmop.plan.memory import weight_bytes
from llmop.plan.parse import parse_spec
from llmop.plan.planner import plan
from llmop.plan.types import Plan


def _model(gpu: str, weights: str) -> DecodeModel:
    arch = MODELS[CALIBRATION_MODEL].architecture
    method = METHODS[Quantization.FP8 if weights == "fp8" else Quantization.NONE]
    return DecodeModel(
        gpu=GPUS[gpu],
        weight_bytes=weight_bytes(arch, method),
        kv_bytes_per_token=arch.kv_bytes_per_token(),
        flops_per_token=2 * arch.parameters,
        layers=arch.layers,
        tensor_parallel=1,
        kernel_efficiency=method.kernel_efficiency,
    )


def _errors() -> list[float]:
    return [abs(_model(s.gpu, s.weights).step_ms(s.batch, s.context) - s.step_ms) / s.step_ms for s in SAMPLES]


def test_model_tracks_every_measured_step() -> None:
    errors = _errors()
    assert len(errors) >= 40
    assert sum(errors) / len(errors) < 0.05
    assert max(errors) < 0.15


@pytest.mark.parametrize("gpu", ["H100-80GB", "H200"])
def test_capacity_curve_is_monotonic_and_bandwidth_bound(gpu: str) -> None:
    model = _model(gpu, "bf16")
    steps = [model.step_ms(b, 4096) for b in (1, 4, 16, 64)]
    assert steps == sorted(steps)
    # batch 1 to 32 with no KV cost about the same: weights dominate
    assert model.step_ms(32, 0) / model.step_ms(1, 0) < 1.1


def test_fp8_speedup_is_not_the_byte_ratio() -> None:
    bf16, fp8 = _model("H100-80GB", "bf16"), _model("H100-80GB", "fp8")
    speedup = bf16.step_ms(16, 0) / fp8.step_ms(16, 0)
    assert 1.3 < speedup < 1.7


def test_max_batch_within_target() -> None:
    model = _model("H100-80GB", "bf16")
    batch = model.max_batch_within(20.0, 4096, 1024)
    assert model.step_ms(batch, 4096) <= 20.0 < model.step_ms(batch + 1, 4096)
    assert model.max_batch_within(model.floor_ms() / 2, 0, 1024) == 0


def test_slo_below_floor_is_a_warning_with_both_numbers() -> None:
    spec = parse_spec(
        {
            "model": {"name": "meta-llama/Llama-3.1-8B-Instruct"},
            "gpu": {"type": "L4", "count": 1},
            "slo": {"decodeLatency": {"targetMs": 5}},
        }
    )
    result = plan(spec)  # type: ignore[arg-type]
    assert isinstance(result, Plan)
    (warning,) = [w for w in result.warnings if w.field == "spec.slo.decodeLatency.targetMs" and "floor" in w.message]
    assert "5 ms" in warning.message and f"{result.decode_floor_ms:.1f} ms" in warning.message
    assert result.max_concurrency_at_slo == 0


def test_vllm_slo_between_bucket_edges_is_flagged() -> None:
    def warnings(target: float, engine: str = "vllm") -> list[str]:
        spec = parse_spec({"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}, "engine": engine,
                           "gpu": {"type": "H100-80GB"}, "slo": {"decodeLatency": {"targetMs": target}}})  # fmt: skip
        result = plan(spec)  # type: ignore[arg-type]
        assert isinstance(result, Plan)
        return [w.message for w in result.warnings if w.field == "spec.slo.decodeLatency.targetMs"]

    # vLLM 0.33 (the default) reads a 1 ms ladder: every whole-millisecond target up to 50 ms is an edge
    assert warnings(50) == [] and warnings(75) == [] and warnings(40) == [] and warnings(8) == []
    assert warnings(40.3) == []  # within half a millisecond of an edge
    (inside,) = warnings(61.2)
    assert inside.startswith("SLO 61.2 ms falls inside vLLM's 60-62.5 ms inter-token-latency bucket (llmop's ladder)")
    floor, below = warnings(0.4)
    assert "below the decode floor" in floor and "first inter-token-latency bucket (1 ms)" in below
    (tgi,) = warnings(40, engine="tgi")  # TGI's x1.5 ladder: judged at the edge below
    assert tgi == (
        "SLO 40 ms falls inside TGI's 29.2-43.8 ms batch-step bucket (TGI's buckets are fixed, 1.5x apart); the "
        "autoscaler judges it conservatively: a breach when more than the SLO's share of batch steps is above 29.2 ms. "
        "A target on an edge (29.2 or 43.8 ms) is judged exactly"
    )
