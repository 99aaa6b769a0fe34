"""`llmop probe` against the simulator's streaming APIs (in-process server on 127.0.0.1:0), both engines."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from llmop.autoscale.probe import _result, probe
from llmop.engines import adapter
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


class _MergingEngine(BaseHTTPRequestHandler):
    """A busy vLLM: 6 tokens streamed in 3 chunks (1, 3, 2 tokens), 20 ms apart, then the usage chunk."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    protocol_version = "HTTP/1.1"  # chunked, one event a chunk, as uvicorn sends them

    def _chunk(self, payload: object) -> None:
        event = f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n".encode()
        self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        self.wfile.flush()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert body["stream_options"] == {"include_usage": True}
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for text in (" a", " b c d", " e f"):
            self._chunk({"choices": [{"index": 0, "text": text}]})
            time.sleep(0.02)
        self._chunk({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 6}})
        self._chunk("[DONE]")
        self.wfile.write(b"0\r\n\r\n")


def test_vllm_probe_counts_tokens_from_usage_not_chunks() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MergingEngine)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        stream = adapter("vllm").stream_tokens(f"http://127.0.0.1:{server.server_port}", "hi", 6, "m", 5.0)
        result = probe(f"http://127.0.0.1:{server.server_port}", "vllm", max_tokens=6, model="m", timeout_s=5.0)
    finally:
        server.shutdown()
        server.server_close()
    assert stream.tokens == 6 and len(stream.arrivals) == 3
    # The engine's count divides the first-to-last span, not the chunks': five tokens after the first, not two.
    span_ms = (stream.arrivals[-1] - stream.arrivals[0]) * 1000
    assert _result("vllm", "http://engine", stream).tpot_ms == span_ms / 5
    assert result.tokens == 6 and result.tpot_ms is not None
    # two 20 ms gaps carried five tokens: about 8 ms each. The client may see the gaps shorter than the server
    # slept (the first chunk read late on a loaded machine: 7.4 ms seen under a benchmark), not much longer.
    assert 0 < result.tpot_ms < 40 / 5 + 6
