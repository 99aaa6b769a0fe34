"""A local stand-in for the Hugging Face hub on 127.0.0.1: serves config.json the way huggingface_hub reads it."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class HubRepo:
    """One model repo: its config.json, and who may read it."""

    config: dict[str, Any] | None  # None: the repo has no config.json
    gated_token: str | None = None  # when set, only this bearer token may read it
    delay_s: float = 0.0  # answer this late (a hub that times out)
    status: int | None = None  # answer every request with this status and no error code (e.g. 500)


@dataclass
class FakeHub:
    """Repos by id, and every request seen as (method, path, Authorization header)."""

    repos: dict[str, HubRepo] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    url: str = ""


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _send(self, status: int, code: str | None = None, payload: bytes = b"", body: bool = True) -> None:
            self.send_response(status)
            if code:
                self.send_header("X-Error-Code", code)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if body and payload:
                self.wfile.write(payload)

        def _answer(self, body: bool) -> None:
            auth = self.headers.get("Authorization")
            hub.requests.append((self.command, self.path, auth))
            parts = self.path.split("?")[0].strip("/").split("/")
            if len(parts) < 5 or parts[2] != "resolve":
                self._send(404, "RepoNotFound", body=body)
                return
            repo_id, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._send(401, "RepoNotFound", b'{"error":"Repository not found"}', body)
                return
            if repo.delay_s:
                time.sleep(repo.delay_s)
            if repo.status:
                self._send(repo.status, None, b"{}", body)
                return
            if repo.gated_token and auth != f"Bearer {repo.gated_token}":
                self._send(403 if auth else 401, "GatedRepo", b'{"error":"gated"}', body)
                return
            if revision not in {"main", "v1"}:
                self._send(404, "RevisionNotFound", body=body)
                return
            if filename != "config.json" or repo.config is None:
                self._send(404, "EntryNotFound", body=body)
                return
            payload = json.dumps(repo.config).encode()
            digest = hashlib.sha256(payload).hexdigest()
            self.send_response(200)
            self.send_header("X-Repo-Commit", hashlib.sha1(repo_id.encode() + revision.encode()).hexdigest())
            self.send_header("ETag", f'"{digest}"')
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if body:
                self.wfile.write(payload)

    return Handler


@contextmanager
def serve_hub(repos: dict[str, HubRepo]) -> Iterator[FakeHub]:
    """Run the fake hub on a free 127.0.0.1 port until the block ends."""
    hub = FakeHub(repos=dict(repos))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    server.daemon_threads = True
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
