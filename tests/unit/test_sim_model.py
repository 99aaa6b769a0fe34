"""The simulator's decode-load model and exposition."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from llmop.catalog.calibration import __name__ as _calibration  # noqa: F401 - the measured table lives there
from llmop.plan.parse import parse_resource
from llmop.plan.planner import plan
from llmop.plan.types import Plan
from llmop_dev.sim.exposition import exposition
from llmop_dev.sim.fleet import DeploymentSim
from llmop_dev.sim.model import Physics, Workload, steady_quantile_ms
from llmop_dev.sim.traces import Trace, parse_csv, step

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _plan(file: str) -> Plan:
    resource = parse_resource(yaml.safe_load((EXAMPLES / file).read_text()))
    result = plan(resource.spec, resource.name)  # type: ignore[union-attr]
    assert isinstance(result, Plan)
    return result


def test_more_replicas_lower_latency() -> None:
    physics = Physics.from_plan(_plan("llama31-8b-h100-fp8-vllm.yaml"))
    work = Workload(rps=60.0, output_tokens=256.0)
    values = [steady_quantile_ms(physics, work, n, 0.95) or 0.0 for n in range(2, 8)]
    assert all(a >= b for a, b in itertools.pairwise(values)) and values[0] > values[-1]


def test_step_time_follows_the_calibration() -> None:
    # H100, Llama-3-8B shapes, bf16: 6.22 ms at batch 1 and 11.62 ms at batch 32, ctx 4096 (calibration.md).
    spec = {"apiVersion": "llmop.io/v1alpha1", "kind": "LLMDeployment", "metadata": {"name": "cal"},
            "spec": {"model": {"name": "meta-llama/Meta-Llama-3-8B-Instruct"}, "gpu": {"type": "H100-80GB"},
                     "maxModelLen": 8192}}  # fmt: skip
    physics = Physics.from_plan(plan(parse_resource(spec).spec, "cal"))  # type: ignore[union-attr,arg-type]
    assert physics.step_ms(1, 4096) == pytest.approx(6.22, rel=0.15)
    assert physics.step_ms(32, 4096) == pytest.approx(11.62, rel=0.15)


def test_startup_delay_is_respected_and_exposition_parses() -> None:
    sim = DeploymentSim("ml", "llama", _plan("llama31-8b-h100-fp8-tgi.yaml"), Workload(10, 128), startup_seconds=120)
    sim.add_pod(0.0)
    assert sim.advance(60.0, 1.0).serving == 0 and exposition([sim], 60.0) == ""
    tick = sim.advance(130.0, 5.0)
    assert tick.serving == 1 and tick.tokens > 0
    families = {f.name: f for f in text_string_to_metric_families(exposition([sim], 135.0))}
    assert {"tgi_batch_inference_duration", "tgi_queue_size", "tgi_batch_current_size"} <= set(families)
    sample = families["tgi_queue_size"].samples[0]
    assert sample.labels == {"namespace": "ml", "pod": "llama-00001", "llmdeployment": "llama",
                             "model_name": "meta-llama/Llama-3.1-8B-Instruct"}  # fmt: skip


def test_vllm_exposition_has_the_real_buckets_and_names() -> None:
    sim = DeploymentSim("ml", "v", _plan("llama31-8b-h100-fp8-vllm.yaml"), Workload(20, 128), startup_seconds=0)
    sim.add_pod(0.0)
    sim.advance(0.0, 5.0)
    families = {f.name: f for f in text_string_to_metric_families(exposition([sim], 5.0))}
    assert {"vllm:inter_token_latency_seconds", "vllm:num_requests_running", "vllm:num_requests_waiting",
            "vllm:kv_cache_usage_perc", "vllm:time_to_first_token_seconds", "vllm:generation_tokens",
            "vllm:request_success"} <= set(families)  # fmt: skip
    les = [s.labels["le"] for s in families["vllm:inter_token_latency_seconds"].samples if s.name.endswith("_bucket")]
    assert les[:3] == ["0.01", "0.025", "0.05"] and les[-1] == "+Inf" and len(les) == 20


def test_saturation_queues() -> None:
    sim = DeploymentSim("ml", "v", _plan("llama31-8b-h100-fp8-vllm.yaml"), Workload(80, 256), startup_seconds=0)
    sim.add_pod(0.0)
    assert sim.advance(0.0, 10.0).waiting > 100


def test_traces_round_trip_and_find_steps() -> None:
    trace = step(10, 60, at=300, back=900, duration=1200)
    again = parse_csv(trace.to_csv())
    assert again == Trace(trace.points, 1200.0, "trace") and again.steps_up() == [300.0]
    assert again.at(299).rps == 10 and again.at(300).rps == 60 and again.at(1000).rps == 10
