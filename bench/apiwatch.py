"""Raw HTTPS client, watch-stream recorder and audit-log reader for benchmarks on the local control plane."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmop_dev.localcluster.controlplane import ControlPlane

HOST = "127.0.0.1"
USER_AGENT = "llmop-bench"


class RawApi:
    """Minimal HTTPS client for 127.0.0.1 with the admin client cert: one keep-alive connection per thread."""

    def __init__(self, plane: ControlPlane) -> None:
        self.port = plane.ports["apiserver"]
        self.context = ssl.create_default_context(cafile=str(plane.pki.ca_cert))
        self.context.load_cert_chain(str(plane.pki.admin_cert), str(plane.pki.admin_key))
        self._local = threading.local()

    def connect(self, timeout: float | None = 60.0) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(HOST, self.port, context=self.context, timeout=timeout)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        for attempt in (1, 2):
            conn: http.client.HTTPSConnection | None = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = self.connect()
            headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
            payload = None
            if body is not None:
                payload = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            try:
                conn.request(method, path, payload, headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
                continue
            return response.status, (json.loads(data) if data else {})
        raise AssertionError("unreachable")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()


class Watch(threading.Thread):
    """Records when this client first sees each object of one collection (time.monotonic())."""

    def __init__(self, api: RawApi, path: str, on_event: Callable[[str, dict[str, Any], float], None]) -> None:
        super().__init__(daemon=True, name=f"watch {path}")
        self.api, self.path, self.on_event = api, path, on_event
        self.ready = threading.Event()
        self.stopped = threading.Event()
        self.error: str | None = None
        self._conn: http.client.HTTPSConnection | None = None

    def run(self) -> None:
        status, listing = self.api.request("GET", self.path)
        if status != 200:
            self.error = f"list {self.path}: HTTP {status}"
            self.ready.set()
            return
        version = listing["metadata"]["resourceVersion"]
        for item in listing.get("items") or []:
            self.on_event("ADDED", item, time.monotonic())
        while not self.stopped.is_set():
            self._conn = self.api.connect(timeout=None)
            try:
                query = f"watch=true&resourceVersion={version}&timeoutSeconds=3600&allowWatchBookmarks=true"
                self._conn.request("GET", f"{self.path}?{query}", headers={"User-Agent": USER_AGENT})
                response = self._conn.getresponse()
                if response.status != 200:
                    self.error = f"watch {self.path}: HTTP {response.status}"
                    return
                self.ready.set()
                while True:
                    line = response.readline()
                    if not line:
                        break
                    seen = time.monotonic()
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        self.error = f"watch {self.path}: {obj.get('message')}"
                        return
                    version = (obj.get("metadata") or {}).get("resourceVersion", version)
                    if event.get("type") != "BOOKMARK":
                        self.on_event(str(event.get("type")), obj, seen)
            except (OSError, http.client.HTTPException, ValueError) as error:
                if not self.stopped.is_set():
                    self.error = f"watch {self.path}: {error}"
                return
            finally:
                self._conn.close()
                self.ready.set()

    def stop(self) -> None:
        self.stopped.set()
        conn = self._conn
        if conn is not None and conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)


class AuditLog:
    """Incremental reader of the API server's JSON-lines audit log (write requests only, by policy)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1  # a partly written last line is read next time
        self.offset += end
        return [json.loads(line) for line in data[:end].splitlines() if line.strip()]

    @staticmethod
    def by_user(entries: list[dict[str, Any]], user: str) -> list[dict[str, Any]]:
        return [e for e in entries if (e.get("user") or {}).get("username") == user]

    @staticmethod
    def describe(entries: list[dict[str, Any]]) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for e in entries:
            ref = e.get("objectRef") or {}
            resource = ref.get("resource", "?") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
            counts[f"{e.get('verb')} {resource}"] += 1
        return dict(counts.most_common())
