"""The HTTP session the operator queries Prometheus with: TLS verified, credentials from files, no redirects."""

from __future__ import annotations

import base64
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.auth import AuthBase

from llmop.autoscale.http_errors import CredentialsUnreadable
from llmop.autoscale.outbound import origin
from llmop.engines.streaming import NoRedirectSession

log = logging.getLogger("llmop.prometheus")


@dataclass(frozen=True)
class PrometheusClientSettings:
    """TLS and credentials for Prometheus. Credentials go only to the operator's own Prometheus origin."""

    ca_file: str | None = None  # PEM bundle to verify https servers with; None: the system's trust store
    insecure_skip_verify: bool = False  # explicit opt-out of certificate checks (logged)
    bearer_token_file: str | None = None  # re-read when the file changes (a rotated Secret or projected token)
    basic_auth_username_file: str | None = None
    basic_auth_password_file: str | None = None
    credentials_origin: str | None = None  # the operator's own Prometheus URL; None: send credentials nowhere

    @property
    def has_credentials(self) -> bool:
        return bool(self.bearer_token_file or self.basic_auth_password_file)


class CachedFile:
    """A small secret file, read again whenever its inode, size or modification time changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._key: tuple[int, int, int] | None = None
        self._value = ""

    def read(self) -> str:
        try:
            stat = os.stat(self.path)
            key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            with self._lock:
                if key != self._key:
                    self._value, self._key = Path(self.path).read_text().strip(), key
                return self._value
        except OSError as error:
            why = error.strerror or type(error).__name__
            raise CredentialsUnreadable(f"credential file {self.path}: {why}") from None


class FileAuth(AuthBase):
    """Bearer token or basic auth from files, attached only to requests for the credentials origin."""

    def __init__(self, settings: PrometheusClientSettings) -> None:
        self.origin = origin(settings.credentials_origin) if settings.credentials_origin else None
        self.token = CachedFile(settings.bearer_token_file) if settings.bearer_token_file else None
        self.username = CachedFile(settings.basic_auth_username_file) if settings.basic_auth_username_file else None
        self.password = CachedFile(settings.basic_auth_password_file) if settings.basic_auth_password_file else None

    def header(self, url: str) -> str | None:
        """The Authorization header for `url`, or None when it gets no credentials."""
        if self.origin is None or origin(url) != self.origin:
            return None
        if self.token is not None:
            return f"Bearer {self.token.read()}"
        if self.password is not None:
            user = self.username.read() if self.username is not None else ""
            pair = f"{user}:{self.password.read()}".encode()
            return f"Basic {base64.b64encode(pair).decode()}"
        return None

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        value = self.header(str(request.url))
        if value is not None:
            request.headers["Authorization"] = value
        return request


def build_session(settings: PrometheusClientSettings, url: str) -> NoRedirectSession:
    """A session for `url` with the settings' verification (the CA file is checked to exist up front)."""
    session = NoRedirectSession()
    if settings.insecure_skip_verify:
        log.warning("TLS certificate checks are OFF for Prometheus %s (--prometheus-insecure-skip-verify)", url)
        session.verify = False
    elif settings.ca_file:
        if not os.path.isfile(settings.ca_file):
            raise CredentialsUnreadable(f"CA file {settings.ca_file}: not found")
        session.verify = settings.ca_file
    return session


def client_kwargs(settings: PrometheusClientSettings, url: str) -> dict[str, Any]:
    """Keyword arguments for prometheus-api-client's PrometheusConnect: our session and auth."""
    return {"session": build_session(settings, url), "auth": FileAuth(settings) if settings.has_credentials else None}
