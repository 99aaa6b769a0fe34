"""Remembered config.json lookups: a read serves for an hour, a failure for a minute before the hub is asked again."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from typing import Protocol

from llmop.catalog.hf_config import CheckpointLookup, HubFailure
from llmop.hub.fetch import fetch_checkpoint, hub_endpoint

FOUND_TTL_S = 3600.0
FAILED_TTL_S = float(os.environ.get("LLMOP_HUB_RETRY_SECONDS") or 60.0)  # the hub is asked again after a failure


class Fetch(Protocol):
    """fetch_checkpoint's shape (a test passes its own)."""

    def __call__(
        self, model: str, revision: str | None = None, token: str | bool | None = None, *, token_named: str | None
    ) -> CheckpointLookup: ...


class CheckpointCache:
    """Lookups keyed by (hub, model, revision, token digest); safe to share between threads."""

    def __init__(
        self,
        fetch: Fetch | None = None,
        found_ttl_s: float = FOUND_TTL_S,
        failed_ttl_s: float = FAILED_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch: Fetch = fetch or _default_fetch
        self.found_ttl_s = found_ttl_s
        self.failed_ttl_s = failed_ttl_s
        self._clock = clock
        self._entries: dict[tuple[str, str, str | None, str], tuple[float, CheckpointLookup]] = {}
        self._lock = threading.Lock()
        self.fetches = 0  # hub reads made (for tests)

    def lookup(
        self, model: str, revision: str | None, token: str | bool | None, token_named: str | None = None
    ) -> CheckpointLookup:
        digest = hashlib.sha256(str(token).encode()).hexdigest()[:16]
        key = (hub_endpoint(), model, revision, digest)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > now:
                return entry[1]
        result = self._fetch(model, revision, token, token_named=token_named)
        ttl = self.failed_ttl_s if isinstance(result, HubFailure) else self.found_ttl_s
        with self._lock:
            self.fetches += 1
            self._entries[key] = (now + ttl, result)
        return result


def _default_fetch(
    model: str, revision: str | None = None, token: str | bool | None = None, *, token_named: str | None
) -> CheckpointLookup:
    return fetch_checkpoint(model, revision, token, token_named=token_named)
