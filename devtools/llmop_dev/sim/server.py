"""The simulator's HTTP server on 127.0.0.1: /metrics for all pods, load control, and streaming engine APIs."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from llmop_dev.replay.exporter import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, wants_openmetrics
from llmop_dev.sim.deployment import DeploymentSim
from llmop_dev.sim.fleet import Fleet, StaticDeployment

__all__ = ["Fleet", "Handler", "SimServer", "StaticDeployment", "stream_tokens"]

MAX_STREAM_TOKENS = 256
POLL_S = 0.002  # how often a streaming request's handler advances its deployment
LOOKAHEAD_S = 0.015  # ... that far past the wall clock, so a token is known before it is due
WORDS = ("the", "model", "decodes", "one", "token", "per", "step", "while", "memory", "bandwidth", "bounds", "it")


def stream_tokens(fleet: Fleet, sim: DeploymentSim, prompt: str, count: int, limit_s: float = 60.0) -> Iterator[int]:
    """Submit a request to the simulated engines and yield 1..n as each output token reaches the client.

    Every POLL_S the handler advances the deployment to LOOKAHEAD_S past the wall clock; tokens the engine
    generated between two polls are spread evenly over that interval of engine time (a run of decode steps has
    equal steps) and each is released when the wall clock reaches its engine time: tokens stream at the engine's
    step times, not at the poll's."""
    with fleet.lock:
        request = sim.submit(max(len(prompt) // 4, 1), count, time.time())
        last_at = sim.now
    sent = seen = 0
    deadline = time.time() + limit_s
    while sent < request.output_tokens and time.time() < deadline:
        time.sleep(POLL_S)
        with fleet.lock:
            sim.advance(time.time() + LOOKAHEAD_S)
            progress = sim.progress(request)
        tokens = min(progress.tokens, request.output_tokens)
        if tokens > seen:
            for k in range(max(seen, sent) + 1, tokens + 1):
                at = last_at + (progress.at - last_at) * (k - seen) / (tokens - seen)
                delay = at - time.time()
                if delay > 0:
                    time.sleep(delay)
                sent = k
                yield k
            seen = tokens
        last_at = max(progress.at, last_at)
        if progress.done:
            break
    for k in range(sent + 1, request.output_tokens + 1):  # gone from the engines (finished) before a poll saw it
        yield k


class Handler(BaseHTTPRequestHandler):
    """Routes: GET /metrics /health /control/state /v1/models /info; POST /control/load /control/replicas,
    /v1/completions, /v1/chat/completions, /generate_stream, /generate and / (TGI). A `/d/<ns>/<name>` prefix
    selects a deployment; otherwise the request's `model` field, or the first one."""

    server: SimServer
    protocol_version = "HTTP/1.1"  # streams are chunked, one event a chunk, as uvicorn and axum send them

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as uvicorn: no Nagle delay per token

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
            # Content negotiation as vLLM's prometheus_client: a Prometheus 2.x offering OpenMetrics gets `vllm_` names.
            openmetrics = wants_openmetrics(self.headers.get("Accept"))
            content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
            self._send(200, fleet.metrics_text(openmetrics).encode(), content_type)
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
    def _stream_start(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _stream_end(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _event(self, payload: Any) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        event = f"data: {data}\n\n".encode()
        self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        self.wfile.flush()

    def _openai(self, sim: DeploymentSim, path: str, body: dict[str, Any]) -> None:
        chat = path.endswith("chat/completions")
        prompt = json.dumps(body.get("messages")) if chat else str(body.get("prompt", ""))
        count = max(1, min(int(body.get("max_tokens") or body.get("max_completion_tokens") or 16), MAX_STREAM_TOKENS))
        ident, created, model = f"cmpl-{uuid.uuid4().hex[:16]}", int(time.time()), sim.plan.model_name
        kind = "chat.completion.chunk" if chat else "text_completion"
        tokens = stream_tokens(self.server.fleet, sim, prompt, count)
        if not body.get("stream"):
            count = sum(1 for _ in tokens)
            text = "".join(" " + WORDS[i % len(WORDS)] for i in range(count))
            whole: dict[str, Any] = (
                {"index": 0, "message": {"role": "assistant", "content": text}} if chat else {"index": 0, "text": text}
            )
            usage = {"prompt_tokens": max(len(prompt) // 4, 1), "completion_tokens": count}
            self._json(200, {"id": ident, "object": kind.removesuffix(".chunk"), "created": created, "model": model,
                             "choices": [{**whole, "finish_reason": "length"}], "usage": usage})  # fmt: skip
            return
        self._stream_start()
        for index in tokens:
            word = " " + WORDS[(index - 1) % len(WORDS)]
            finish = "length" if index == count else None
            if chat:
                delta = {"role": "assistant", "content": word} if index == 1 else {"content": word}
                choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            else:
                choice = {"index": 0, "text": word, "logprobs": None, "finish_reason": finish}
            self._event({"id": ident, "object": kind, "created": created, "model": model, "choices": [choice]})
        if (body.get("stream_options") or {}).get("include_usage"):  # vLLM: a last chunk with no choices
            usage = {"prompt_tokens": max(len(prompt) // 4, 1), "completion_tokens": count}
            self._event(
                {"id": ident, "object": kind, "created": created, "model": model, "choices": [], "usage": usage}
            )
        self._event("[DONE]")
        self._stream_end()

    def _tgi(self, sim: DeploymentSim, body: dict[str, Any], stream: bool) -> None:
        prompt = str(body.get("inputs", ""))
        parameters = body.get("parameters") or {}
        count = max(1, min(int(parameters.get("max_new_tokens") or 20), MAX_STREAM_TOKENS))
        words = [" " + WORDS[i % len(WORDS)] for i in range(count)]
        details = {"finish_reason": "length", "generated_tokens": count, "seed": None}
        tokens = stream_tokens(self.server.fleet, sim, prompt, count)
        if not stream:
            for _ in tokens:
                pass
            self._json(200, {"generated_text": "".join(words), "details": details})
            return
        self._stream_start()
        for index in tokens:
            last = index == count
            self._event({
                "index": index,
                "token": {"id": 1000 + index, "text": words[index - 1], "logprob": -0.5, "special": False},
                "generated_text": "".join(words) if last else None,
                "details": details if last else None,
                "top_tokens": None,
            })  # fmt: skip
        self._stream_end()


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
