"""The real-time simulator on the replay's engine physics: exposition, start-up, load sources, latency under load."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from llmop.autoscale.metrics import bucket_quantile
from llmop.engines.vllm import ITL_BUCKETS_S as VLLM_ITL_BUCKETS_S
from llmop.plan.parse import parse_resource
from llmop.plan.planner import plan
from llmop.plan.types import Plan
from llmop_dev.replay.exporter import go_float, render_text
from llmop_dev.replay.traces import parse_workload
from llmop_dev.sim.deployment import DeploymentSim
from llmop_dev.sim.fleet import Fleet, StaticDeployment
from llmop_dev.sim.load import RateSource, TraceSource, geometric
from llmop_dev.sim.server import SimServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
T0 = 1_000_000.0  # simulated wall clock: the tests drive DeploymentSim.advance themselves


def _plan(file: str) -> Plan:
    resource = parse_resource(yaml.safe_load((EXAMPLES / file).read_text()))
    result = plan(resource.spec, resource.name)  # type: ignore[union-attr]
    assert isinstance(result, Plan)
    return result


VLLM = "llama31-8b-h100-fp8-vllm.yaml"
TGI = "llama31-8b-h100-fp8-tgi.yaml"
PROMETHEUS_2_ACCEPT = (  # Prometheus 2.42's default
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def _sim(file: str, rps: float, pods: int = 1, name: str = "d", startup: float = 0.0) -> DeploymentSim:
    sim = DeploymentSim("ns", name, _plan(file), RateSource(rps, 200.0, seed=1), startup_seconds=startup, now=T0)
    for _ in range(pods):
        sim.add_pod(T0)
    return sim


def _run(sim: DeploymentSim, seconds: float, tick: float = 0.25) -> None:
    steps = round(seconds / tick)
    start = sim.now
    for i in range(1, steps + 1):
        sim.advance(start + i * tick)


def _families(sim: DeploymentSim) -> dict[str, object]:
    return {family.name: family for family in text_string_to_metric_families(render_text(sim.samples(sim.now)))}


def _itl_buckets(sim: DeploymentSim) -> list[tuple[float, float]]:
    """Cumulative ITL buckets summed over the deployment's pods, as (upper bound, count)."""
    totals: dict[float, float] = {}
    for name, labels, value in sim.samples(sim.now):
        if name == "vllm:inter_token_latency_seconds_bucket":
            bound = float(labels["le"])
            totals[bound] = totals.get(bound, 0.0) + value
    return sorted(totals.items())


def test_vllm_exposition_parses_with_real_names_buckets_and_pod_labels() -> None:
    sim = _sim(VLLM, rps=2.0, pods=2)
    _run(sim, 10)
    families = _families(sim)
    assert {
        "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
        "vllm:inter_token_latency_seconds", "vllm:time_to_first_token_seconds",
        "vllm:request_time_per_output_token_seconds", "vllm:request_success", "vllm:generation_tokens",
        "vllm:prompt_tokens", "vllm:request_prompt_tokens", "vllm:request_generation_tokens",
    } <= set(families)  # fmt: skip
    itl = families["vllm:inter_token_latency_seconds"]
    assert itl.type == "histogram"  # type: ignore[attr-defined]
    pods = sorted(sim.pods)
    assert pods == ["d-00001", "d-00002"]
    args = list(sim.plan.args)  # the pods run the argv llmop rendered: its --custom-histogram-buckets, read here
    ladder = json.loads(args[args.index("--custom-histogram-buckets") + 1])["inter_token_latency"]
    assert ladder[:3] == [0.001, 0.002, 0.003] and ladder != list(VLLM_ITL_BUCKETS_S)
    for pod in pods:
        les = [s.labels["le"] for s in itl.samples if s.name.endswith("_bucket") and s.labels["pod"] == pod]  # type: ignore[attr-defined]
        assert les == [go_float(edge) for edge in ladder] + ["+Inf"]
    running = families["vllm:num_requests_running"].samples[0]  # type: ignore[attr-defined]
    assert running.labels == {"model_name": "meta-llama/Llama-3.1-8B-Instruct", "engine": "0", "namespace": "ns",
                              "llmdeployment": "d", "pod": "d-00001"}  # fmt: skip


def test_a_vllm_argv_without_custom_buckets_exports_vllms_defaults() -> None:
    planned = _plan(VLLM)
    args = list(planned.args)
    at = args.index("--custom-histogram-buckets")
    del args[at : at + 2]
    sim = DeploymentSim("ns", "d", replace(planned, args=tuple(args)), RateSource(2.0, 200.0, seed=1),
                       startup_seconds=0.0, now=T0)  # fmt: skip
    sim.add_pod(T0)
    _run(sim, 10)
    assert [bound for bound, _ in _itl_buckets(sim)] == [*VLLM_ITL_BUCKETS_S, math.inf]


def test_tgi_pod_has_no_queue_or_batch_gauge_before_its_first_request() -> None:
    sim = _sim(TGI, rps=0.0)
    _run(sim, 2)
    assert sim.samples(sim.now) == []  # TGI's router creates its series at their first update
    request = sim.submit(8, 4, sim.now)
    _run(sim, 1)
    assert sim.progress(request).done
    families = _families(sim)
    assert families["tgi_queue_size"].samples[0].value == 0  # type: ignore[attr-defined]
    assert families["tgi_batch_current_size"].samples[0].value == 0  # type: ignore[attr-defined]
    assert families["tgi_request_mean_time_per_token_duration"].samples[-1].value == 1  # type: ignore[attr-defined]
    assert families["tgi_queue_size"].samples[0].labels == {"namespace": "ns", "llmdeployment": "d",  # type: ignore[attr-defined]
                                                            "pod": "d-00001"}  # fmt: skip


def test_start_up_delay_is_respected() -> None:
    sim = _sim(VLLM, rps=5.0, startup=30.0)
    _run(sim, 29.75)
    assert sim.samples(sim.now) == [] and sim.serving_pods(sim.now) == []
    assert len(sim.queue) > 0  # requests wait at the Service until a pod is ready
    _run(sim, 0.5)
    assert sim.serving_pods(sim.now) and not sim.queue
    assert {labels["pod"] for _, labels, _ in sim.samples(sim.now)} == {"d-00001"}


def test_more_load_gives_a_higher_itl_quantile_on_the_same_pods() -> None:
    values = []
    for rps in (2.0, 40.0):
        sim = _sim(VLLM, rps=rps, pods=1)
        _run(sim, 60)
        values.append(bucket_quantile(0.95, _itl_buckets(sim)))
    assert values[0] < 0.01  # a light batch decodes under vLLM's first edge (10 ms)
    assert values[1] > 0.025


def test_rate_source_is_seeded_poisson_and_a_trace_loops() -> None:
    first = RateSource(10.0, 100.0, seed="x").arrivals(0.0, 100.0)
    again = RateSource(10.0, 100.0, seed="x").arrivals(0.0, 100.0)
    assert first == again and 900 <= len(first) <= 1100
    assert all(r.prompt_tokens == 1024 and r.output_tokens >= 1 for r in first)
    assert [geometric(1.0, 0.9), geometric(2.0, 0.0), geometric(2.0, 0.75)] == [1, 1, 3]
    workload = parse_workload("timestamp_s,prompt_tokens,output_tokens\n1,10,5\n3,20,6\n")
    source = TraceSource(workload, started=100.0)
    arrivals = source.arrivals(100.0, 107.5)
    assert [(r.arrival_s, r.prompt_tokens, r.output_tokens) for r in arrivals] == [
        (101.0, 10, 5), (103.0, 20, 6), (104.0, 10, 5), (106.0, 20, 6), (107.0, 10, 5)
    ]  # fmt: skip
    assert source.arrivals(107.5, 110.0)[0].arrival_s == 109.0


def test_server_metrics_state_and_load_control() -> None:
    fleet = Fleet(tick_s=0.1)
    fleet.add(StaticDeployment("ml", "chat", _plan(VLLM), replicas=2, rps=0.0))
    server = SimServer(fleet)
    server.start()
    try:
        metrics = requests.get(f"{server.url}/metrics", timeout=5)
        assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        pods = {s.labels["pod"] for f in text_string_to_metric_families(metrics.text) for s in f.samples}
        assert pods == {"chat-00001", "chat-00002"}
        ok = requests.post(f"{server.url}/control/load", json={"namespace": "ml", "name": "chat", "rps": 7,
                                                               "meanOutputTokens": 50}, timeout=5)  # fmt: skip
        assert ok.status_code == 200
        state = requests.get(f"{server.url}/control/state", timeout=5).json()
        assert [(s["name"], s["rps"], s["meanOutputTokens"], s["pods"], s["serving"]) for s in state] == [
            ("chat", 7.0, 50.0, 2, 2)
        ]
        body = {"namespace": "ml", "name": "x", "rps": 1}
        missing = requests.post(f"{server.url}/control/load", json=body, timeout=5)
        assert missing.status_code == 404
    finally:
        server.stop()


@pytest.mark.parametrize("tick", [0.25, 1.0])
def test_advancing_in_bigger_ticks_keeps_the_same_arrivals(tick: float) -> None:
    sim = _sim(VLLM, rps=3.0)
    _run(sim, 20, tick)
    finished = sum(v for n, _, v in sim.samples(sim.now) if n == "vllm:request_success_total")
    assert finished == pytest.approx(sum(1 for _ in RateSource(3.0, 200.0, seed=1).arrivals(T0, T0 + 20)), abs=8)


def test_server_gives_a_prometheus_2_the_names_vllm_escapes() -> None:
    """Prometheus 2.x's default Accept header gets OpenMetrics with `vllm_` names, as from vLLM's prometheus_client."""
    fleet = Fleet(tick_s=0.1)
    fleet.add(StaticDeployment("ml", "chat", _plan(VLLM), replicas=1, rps=0.0))
    server = SimServer(fleet)
    server.start()
    try:
        negotiated = requests.get(f"{server.url}/metrics", headers={"Accept": PROMETHEUS_2_ACCEPT}, timeout=5)
        plain = requests.get(f"{server.url}/metrics", headers={"Accept": "text/plain;version=0.0.4"}, timeout=5)
    finally:
        server.stop()
    assert negotiated.headers["Content-Type"].endswith("escaping=underscores") and negotiated.text.endswith("# EOF\n")
    escaped = {s.name for f in parse_openmetrics(negotiated.text) for s in f.samples}
    colon = {s.name for f in text_string_to_metric_families(plain.text) for s in f.samples}
    assert "vllm_num_requests_running" in escaped and not any(":" in name for name in escaped)
    assert {name.replace(":", "_") for name in colon} == escaped
