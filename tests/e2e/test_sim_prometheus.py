"""The simulator scraped by the real Prometheus: every query of llmop.engines parses and returns data."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from llmop.autoscale.metrics import PrometheusMetrics  # noqa: E402
from llmop.engines import queries  # noqa: E402
from llmop.engines.promql import selector  # noqa: E402
from llmop.plan.parse import parse_resource  # noqa: E402
from llmop.plan.planner import plan  # noqa: E402
from llmop.plan.types import Plan  # noqa: E402
from llmop_dev.sim.server import Fleet, SimServer, StaticDeployment  # noqa: E402
from support.prometheus import Prometheus, find_prometheus  # noqa: E402

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEPLOYMENTS = {"vllm": "llama31-8b-h100-fp8-vllm.yaml", "tgi": "llama31-8b-h100-fp8-tgi.yaml"}
NAMESPACE = "e2e"


def _plan(file: str) -> tuple[str, Plan]:
    import yaml

    resource = parse_resource(yaml.safe_load((EXAMPLES / file).read_text()))
    assert not hasattr(resource, "errors")
    result = plan(resource.spec, resource.name)
    assert isinstance(result, Plan)
    return resource.name, result


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Prometheus, dict[str, str]]]:
    if find_prometheus() is None:
        if os.environ.get("REQUIRE_K8S") == "1":
            pytest.fail("REQUIRE_K8S=1 but prometheus is not installed", pytrace=False)
        pytest.skip("prometheus is not installed")
    fleet = Fleet(tick_s=0.5)
    names: dict[str, str] = {}
    for engine, file in DEPLOYMENTS.items():
        name, result = _plan(file)
        names[engine] = name
        fleet.add(StaticDeployment(NAMESPACE, name, result, replicas=2, rps=12.0, output_tokens=128.0))
    server = SimServer(fleet)
    server.start()
    prometheus = Prometheus(tmp_path_factory.mktemp("prometheus"), [server.url.removeprefix("http://")], 1.0)
    prometheus.start()
    try:
        # Enough scrapes for rate()/deriv() over the 60 s rate window to have two points.
        deadline = time.monotonic() + 60
        probe = f"vllm:num_requests_running{{{selector(NAMESPACE, names['vllm'])}}}"
        while time.monotonic() < deadline and len(prometheus.query(f"count_over_time({probe}[1m])") or []) == 0:
            time.sleep(0.5)
        time.sleep(6)
        yield prometheus, names
    finally:
        prometheus.stop()
        server.stop()


@pytest.mark.parametrize("engine", ["vllm", "tgi"])
def test_every_query_returns_data(stack: tuple[Prometheus, dict[str, str]], engine: str) -> None:
    prometheus, names = stack
    for item in queries(engine):
        expr = item.render(NAMESPACE, names[engine], window_s=30, quantile=0.95)
        result = prometheus.query(expr)
        assert result, f"{engine} {item.name} returned nothing: {expr}"
        values = [float(row["value"][1]) for row in result]
        assert all(not math.isnan(v) for v in values), f"{item.name}: {values}"


@pytest.mark.parametrize("engine", ["vllm", "tgi"])
def test_observation_matches_histogram_quantile(stack: tuple[Prometheus, dict[str, str]], engine: str) -> None:
    prometheus, names = stack
    observation = PrometheusMetrics(prometheus.url).observe(NAMESPACE, names[engine], engine, None, 95, 30)
    assert observation.error is None, observation.error
    assert observation.running is not None and observation.running > 0
    assert observation.samples > 0 and observation.latency_ms is not None
    quantile = next(q for q in queries(engine) if q.name == "decode_latency_quantile")
    value = float(prometheus.query(quantile.render(NAMESPACE, names[engine], 30, 0.95))[0]["value"][1]) * 1000
    # vLLM's pods run the rendered 1 ms ladder (--custom-histogram-buckets): its ~5 ms decode is read, not
    # "<= 10 ms", vLLM's default first edge.
    assert not observation.below_resolution
    assert observation.latency_ms == pytest.approx(value, rel=0.02)


def test_unreachable_prometheus_is_an_error_not_an_exception() -> None:
    from support.prometheus import free_port

    observation = PrometheusMetrics(f"http://127.0.0.1:{free_port()}", timeout_s=1).observe("x", "y", "vllm")
    assert observation.error is not None and observation.latency_ms is None
