"""The /healthz and /readyz endpoints on their own thread, so that they answer while the event loop is wedged."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from llmop.controller.health import Health

PATHS = {"/healthz": "liveness", "/livez": "liveness", "/readyz": "readiness"}


def _handler(health: Health) -> type[BaseHTTPRequestHandler]:
    class HealthHandler(BaseHTTPRequestHandler):
        """200 `ok`, or 503 with one problem per line."""

        def do_GET(self) -> None:
            check = PATHS.get(self.path.split("?", 1)[0])
            if check is None:
                self._send(404, "not found\n")
                return
            problems = health.liveness() if check == "liveness" else health.readiness()
            self._send(503 if problems else 200, "".join(f"{p}\n" for p in problems) or "ok\n")

        def _send(self, code: int, text: str) -> None:
            body = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # probes every few seconds: not worth a log line

    return HealthHandler


def serve(health: Health, address: str, port: int) -> ThreadingHTTPServer:
    """Start serving on a daemon thread; `shutdown()` the returned server to stop."""
    server = ThreadingHTTPServer((address, port), _handler(health))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="llmop-health", daemon=True).start()
    return server
