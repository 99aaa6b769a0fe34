"""Streaming generations from an engine's HTTP API: server-sent events over a session that never follows redirects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import requests


class NoRedirectSession(requests.Session):
    """A session that returns 3xx answers as they are: an allowed URL cannot bounce a request elsewhere."""

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        return None


def check(response: requests.Response) -> requests.Response:
    """The response, or an HTTPError for an error status and for a redirect (not followed)."""
    if 300 <= response.status_code < 400:
        raise requests.HTTPError(f"HTTP {response.status_code} (redirects are not followed)", response=response)
    response.raise_for_status()
    return response


def get_json(session: requests.Session, url: str, timeout_s: float) -> Any:
    with session.get(url, timeout=timeout_s, allow_redirects=False) as response:
        return check(response).json()


def events(session: requests.Session, url: str, payload: dict[str, Any], timeout_s: float) -> Iterator[dict[str, Any]]:
    """POST `payload` and yield each `data:` event as JSON until the stream ends or says `[DONE]`."""
    with session.post(url, json=payload, stream=True, timeout=timeout_s, allow_redirects=False) as response:
        for raw in check(response).iter_lines():
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                return
            event = json.loads(data)
            if isinstance(event, dict):
                yield event
