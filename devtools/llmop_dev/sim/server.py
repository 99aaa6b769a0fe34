"""The simulator's HTTP server on 127.0.0.1: /metrics for all pods, load control, and streaming engine APIs."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from llmop.plan.types import Plan
from llmop_dev.sim.exposition import exposition
from llmop_dev.sim.fleet import DeploymentSim
from llmop_dev.sim.model import DEFAULT_PROMPT_TOKENS, Workload
from llmop_dev.sim.traces import Trace

MAX_STREAM_TOKENS = 256
WORDS = ("the", "model", "decodes", "one", "token", "per", "step", "while", "memory", "bandwidth", "bounds", "it")


@dataclass(frozen=True)
class StaticDeployment:
    """A deployment for standalone mode (no cluster): its pods are created ready at start."""

    namespace: str
    name: str
    plan: Plan
    replicas: int = 1
    rps: float = 0.0
    output_tokens: float = 256.0
    prompt_tokens: float = DEFAULT_PROMPT_TOKENS
    startup_seconds: float | None = None


class Fleet:
    """All simulated deployments, advanced in real time by a ticker thread; thread-safe."""

    def __init__(self, tick_s: float = 1.0) -> None:
        self.tick_s = tick_s
        self.lock = threading.RLock()
        self.sims: dict[tuple[str, str], DeploymentSim] = {}
        self.traces: dict[tuple[str, str], tuple[Trace, float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last = time.time()

    def add(self, spec: StaticDeployment, now: float | None = None, ready: bool = True) -> DeploymentSim:
        now = time.time() if now is None else now
        work = Workload(spec.rps, spec.output_tokens, spec.prompt_tokens)
        sim = DeploymentSim(spec.namespace, spec.name, spec.plan, work, startup_seconds=spec.startup_seconds)
        for _ in range(spec.replicas):
            sim.add_pod(now, ready_at=now if ready else None)
        with self.lock:
            self.sims[(spec.namespace, spec.name)] = sim
        return sim

    def set_load(self, namespace: str, name: str, rps: float, output_tokens: float | None = None,
                 prompt_tokens: float | None = None) -> bool:  # fmt: skip
        with self.lock:
            sim = self.sims.get((namespace, name))
            if sim is None:
                return False
            old = sim.workload
            sim.workload = Workload(
                max(rps, 0.0),
                old.output_tokens if output_tokens is None else max(output_tokens, 1.0),
                old.prompt_tokens if prompt_tokens is None else max(prompt_tokens, 0.0),
            )
            self.traces.pop((namespace, name), None)
            return True

    def set_trace(self, namespace: str, name: str, trace: Trace, started: float | None = None) -> None:
        with self.lock:
            self.traces[(namespace, name)] = (trace, time.time() if started is None else started)

    def advance(self, now: float) -> None:
        with self.lock:
            dt = max(now - self._last, 0.0)
            self._last = now
            if dt <= 0:
                return
            for key, sim in self.sims.items():
                if key in self.traces:
                    trace, started = self.traces[key]
                    point = trace.at((now - started) % trace.duration)
                    sim.workload = Workload(point.rps, point.output_tokens, sim.workload.prompt_tokens)
                sim.advance(now - dt, dt)

    def metrics_text(self) -> str:
        with self.lock:
            return exposition(list(self.sims.values()), time.time())

    def state(self) -> list[dict[str, Any]]:
        now = time.time()
        with self.lock:
            return [
                {
                    "namespace": sim.namespace,
                    "name": sim.name,
                    "engine": sim.engine,
                    "rps": sim.workload.rps,
                    "meanOutputTokens": sim.workload.output_tokens,
                    "pods": len(sim.pods),
                    "serving": len(sim.serving_pods(now)),
                    "itlMs": round(sim.current_itl_ms(now), 3),
                    "waiting": round(sum(p.queue for p in sim.pods.values()), 2),
                }
                for sim in self.sims.values()
            ]

    def find(self, namespace: str | None, name: str | None, model: str | None) -> DeploymentSim | None:
        with self.lock:
            if namespace and name:
                return self.sims.get((namespace, name))
            matches = [s for s in self.sims.values() if model in (None, "", s.name, s.plan.model_name)]
            return matches[0] if matches else None

    def start(self) -> None:
        self._last = time.time()
        self._thread = threading.Thread(target=self._run, name="llmop-sim-ticker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            self.advance(time.time())

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class Handler(BaseHTTPRequestHandler):
    """Routes: GET /metrics /health /control/state /v1/models /info; POST /control/load /control/replicas,
    /v1/completions, /v1/chat/completions, /generate_stream, /generate and / (TGI). A `/d/<ns>/<name>` prefix
    selects a deployment; otherwise the request's `model` field, or the first one."""

    server: SimServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing -----------------------------------------------------------------------------------------------
    def _route(self) -> tuple[str | None, str | None, str]:
        path = self.path.split("?", 1)[0]
        parts = path.split("/")
        if len(parts) >= 4 and parts[1] == "d":
            return parts[2], parts[3], "/" + "/".join(parts[4:])
        return None, None, path

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode())

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0:
            return {}
        data = json.loads(self.rfile.read(length) or b"{}")
        return data if isinstance(data, dict) else {}

    # -- GET ----------------------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        namespace, name, path = self._route()
        fleet = self.server.fleet
        if path == "/metrics":
            self._send(200, fleet.metrics_text().encode(), "text/plain; version=0.0.4; charset=utf-8")
        elif path in ("/health", "/ping", "/-/ready"):
            self._send(200, b"")
        elif path == "/control/state":
            self._json(200, fleet.state())
        elif path in ("/v1/models", "/info"):
            sim = fleet.find(namespace, name, None)
            if sim is None:
                self._json(404, {"error": "no simulated deployment"})
            elif path == "/info":
                self._json(200, {"model_id": sim.plan.model_name, "router": "text-generation-router (llmop sim)"})
            else:
                self._json(200, {"object": "list", "data": [{"id": sim.plan.model_name, "object": "model"}]})
        else:
            self._json(404, {"error": f"no route {path}"})

    # -- POST ---------------------------------------------------------------------------------------------------
    def do_POST(self) -> None:
        namespace, name, path = self._route()
        try:
            body = self._body()
        except (ValueError, UnicodeDecodeError):
            self._json(400, {"error": "body must be JSON"})
            return
        fleet = self.server.fleet
        if path == "/control/load":
            ok = fleet.set_load(
                str(body.get("namespace", "")),
                str(body.get("name", "")),
                float(body.get("rps", 0.0)),
                body.get("meanOutputTokens"),
                body.get("promptTokens"),
            )
            self._json(200 if ok else 404, {"ok": ok})
            return
        if path == "/control/replicas":
            sim = fleet.find(str(body.get("namespace", "")), str(body.get("name", "")), None)
            if sim is None:
                self._json(404, {"ok": False})
                return
            with fleet.lock:
                sim.scale_to(int(body.get("replicas", 0)), time.time())
            self._json(200, {"ok": True})
            return
        sim = fleet.find(namespace, name, body.get("model"))
        if sim is None:
            self._json(404, {"error": "no simulated deployment"})
            return
        if path in ("/v1/completions", "/v1/chat/completions"):
            self._openai(sim, path, body)
        elif path in ("/generate_stream", "/", "/generate"):
            self._tgi(sim, body, stream=path == "/generate_stream" or (path == "/" and bool(body.get("stream"))))
        else:
            self._json(404, {"error": f"no route {path}"})

    # -- generation ---------------------------------------------------------------------------------------------
    def _timing(self, sim: DeploymentSim, prompt: str) -> tuple[float, float]:
        """(seconds to the first token, seconds per further token) from the simulated fleet right now."""
        now = time.time()
        with self.server.fleet.lock:
            itl_ms = sim.current_itl_ms(now)
            prefill_ms = max(len(prompt) // 4, 1) * sim.physics.prefill_ms_per_token
            serving = sim.serving_pods(now)
            backlog = min((p.queue for p in serving), default=0.0)
            rate = sim.workload.rps / max(len(serving), 1)
        queue_s = backlog / rate if rate > 0 and backlog > 0 else 0.0
        return min(queue_s, 30.0) + (prefill_ms + itl_ms) / 1000.0, itl_ms / 1000.0

    def _stream_start(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def _event(self, payload: Any) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        self.wfile.write(f"data: {data}\n\n".encode())
        self.wfile.flush()

    def _openai(self, sim: DeploymentSim, path: str, body: dict[str, Any]) -> None:
        chat = path.endswith("chat/completions")
        prompt = json.dumps(body.get("messages")) if chat else str(body.get("prompt", ""))
        count = max(1, min(int(body.get("max_tokens") or body.get("max_completion_tokens") or 16), MAX_STREAM_TOKENS))
        first_s, per_s = self._timing(sim, prompt)
        ident, created, model = f"cmpl-{uuid.uuid4().hex[:16]}", int(time.time()), sim.plan.model_name
        kind = "chat.completion.chunk" if chat else "text_completion"
        words = [" " + WORDS[i % len(WORDS)] for i in range(count)]
        if not body.get("stream"):
            time.sleep(first_s + per_s * (count - 1))
            text = "".join(words)
            choice = (
                {"index": 0, "message": {"role": "assistant", "content": text}} if chat else {"index": 0, "text": text}
            )
            usage = {"prompt_tokens": max(len(prompt) // 4, 1), "completion_tokens": count}
            self._json(200, {"id": ident, "object": kind.removesuffix(".chunk"), "created": created, "model": model,
                             "choices": [{**choice, "finish_reason": "length"}], "usage": usage})  # fmt: skip
            return
        self._stream_start()
        for index, word in enumerate(words):
            time.sleep(first_s if index == 0 else per_s)
            finish = "length" if index == count - 1 else None
            if chat:
                delta = {"role": "assistant", "content": word} if index == 0 else {"content": word}
                choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            else:
                choice = {"index": 0, "text": word, "logprobs": None, "finish_reason": finish}
            self._event({"id": ident, "object": kind, "created": created, "model": model, "choices": [choice]})
        self._event("[DONE]")

    def _tgi(self, sim: DeploymentSim, body: dict[str, Any], stream: bool) -> None:
        prompt = str(body.get("inputs", ""))
        parameters = body.get("parameters") or {}
        count = max(1, min(int(parameters.get("max_new_tokens") or 20), MAX_STREAM_TOKENS))
        first_s, per_s = self._timing(sim, prompt)
        words = [" " + WORDS[i % len(WORDS)] for i in range(count)]
        details = {"finish_reason": "length", "generated_tokens": count, "seed": None}
        if not stream:
            time.sleep(first_s + per_s * (count - 1))
            self._json(200, {"generated_text": "".join(words), "details": details})
            return
        self._stream_start()
        for index, word in enumerate(words):
            time.sleep(first_s if index == 0 else per_s)
            last = index == count - 1
            self._event({
                "index": index + 1,
                "token": {"id": 1000 + index, "text": word, "logprob": -0.5, "special": False},
                "generated_text": "".join(words) if last else None,
                "details": details if last else None,
                "top_tokens": None,
            })  # fmt: skip


class SimServer(ThreadingHTTPServer):
    """ThreadingHTTPServer bound to 127.0.0.1 that owns a Fleet; `port` 0 picks a free port."""

    daemon_threads = True

    def __init__(self, fleet: Fleet, port: int = 0, host: str = "127.0.0.1") -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError("the simulator serves on 127.0.0.1 only")
        super().__init__((host, port), Handler)
        self.fleet = fleet

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> threading.Thread:
        self.fleet.start()
        thread = threading.Thread(target=self.serve_forever, name="llmop-sim-http", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.fleet.stop()
