"""`llmop probe` against the simulator's streaming APIs (in-process server on 127.0.0.1:0), both engines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from llmop.autoscale.probe import probe
from llmop.plan.parse import parse_resource
from llmop.plan.planner import plan
from llmop.plan.types import Plan
from llmop_dev.sim.server import Fleet, SimServer, StaticDeployment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    fleet = Fleet()
    for file in ("llama31-8b-h100-fp8-vllm.yaml", "llama31-8b-h100-fp8-tgi.yaml"):
        resource = parse_resource(yaml.safe_load((EXAMPLES / file).read_text()))
        result = plan(resource.spec, resource.name)  # type: ignore[union-attr]
        assert isinstance(result, Plan)
        fleet.add(StaticDeployment("ml", resource.name, result, replicas=1, rps=5.0))  # type: ignore[union-attr]
    sim = SimServer(fleet)
    sim.start()
    yield sim
    sim.stop()


@pytest.mark.parametrize(("engine", "name"), [("vllm", "llama31-8b-fp8"), ("tgi", "llama31-8b-tgi")])
def test_probe_measures_ttft_and_tpot(server: SimServer, engine: str, name: str) -> None:
    result = probe(f"{server.url}/d/ml/{name}", engine, max_tokens=8)
    assert result.error is None and result.tokens == 8
    # 8B fp8 on H100 at light load: ~4-6 ms per token in the model; allow for scheduling on a busy CI box.
    assert result.tpot_ms is not None and 3.0 <= result.tpot_ms <= 60.0
    assert result.ttft_ms is not None and result.ttft_ms >= result.tpot_ms * 0.5


def test_probe_reports_errors(server: SimServer) -> None:
    result = probe(f"{server.url}/d/ml/missing", "vllm", max_tokens=4)
    assert result.error is not None and result.tokens == 0


def test_load_control_changes_latency(server: SimServer) -> None:
    import time

    import requests

    def itl_ms() -> float:
        state = {d["name"]: d for d in requests.get(f"{server.url}/control/state", timeout=5).json()}
        return float(state["llama31-8b-fp8"]["itlMs"])

    before = itl_ms()
    ok = requests.post(f"{server.url}/control/load", json={"namespace": "ml", "name": "llama31-8b-fp8", "rps": 25,
                                                              "meanOutputTokens": 256}, timeout=5)  # fmt: skip
    assert ok.status_code == 200
    deadline = time.monotonic() + 15  # the batch builds up as requests arrive (~25/s, ~1 s each at first)
    while itl_ms() <= before * 1.2 and time.monotonic() < deadline:
        time.sleep(0.25)
    assert itl_ms() > before * 1.2
