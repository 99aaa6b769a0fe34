"""Canary HTTP(S) servers on 127.0.0.1 that record every request, and self-signed certificates for them."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SECRET_BODY = "canary-body-7f3a: internal admin page, do not leak"  # what no status or Event may ever carry


@dataclass(frozen=True)
class Seen:
    """One request a canary received."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Answer:
    """What a canary answers: status, body and extra headers."""

    status: int = 200
    body: str = SECRET_BODY
    headers: dict[str, str] = field(default_factory=dict)


Responder = Callable[[str], Answer]  # request path -> answer


def prometheus_answer(path: str) -> Answer:
    """An empty but well-formed Prometheus query answer (a vector with no series)."""
    if path.startswith("/api/v1/query"):
        return Answer(200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}))
    return Answer(404, SECRET_BODY)


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 (it is its own CA) and its key, as PEM files."""

    cert: Path
    key: Path


def self_signed(directory: Path, name: str = "canary") -> Certificate:
    """Write `name`.crt / `name`.key: an EC P-256 self-signed CA certificate valid for IP 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"llmop test {name}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Certificate(cert_path, key_path)


class Canary:
    """A threaded HTTP server on 127.0.0.1 (https with `certificate`) answering through `respond`."""

    def __init__(
        self, respond: Callable[[str], Answer] = lambda path: Answer(), certificate: Certificate | None = None
    ):
        self.requests: list[Seen] = []
        self.respond = respond
        self._lock = threading.Lock()
        canary = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with canary._lock:
                    canary.requests.append(Seen(self.command, self.path, dict(self.headers.items())))
                answer = canary.respond(self.path)
                body = answer.body.encode()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if certificate is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certificate.cert, certificate.key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def hits(self) -> int:
        with self._lock:
            return len(self.requests)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def canary(
    respond: Callable[[str], Answer] = lambda path: Answer(), certificate: Certificate | None = None
) -> Iterator[Canary]:
    """A running Canary, stopped afterwards."""
    server = Canary(respond, certificate)
    try:
        yield server
    finally:
        server.stop()
