"""Operator-wide periodic pass: autoscale every LLMDeployment each tick and fully reconcile it now and then.

One loop for the whole operator instead of a kopf timer per object: a kopf timer puts a finalizer on every
LLMDeployment, so deleting one would hang whenever no operator runs. The loop knows the objects from the watch
(`Known`), so it never lists them, and it runs passes in a thread pool with bounded concurrency.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

from llmop.controller.heap import release_free_memory

log = logging.getLogger("llmop.resync")

Key = tuple[str, str]


def _essentials(body: Mapping[str, Any]) -> dict[str, Any]:
    """What a periodic pass starts from: identity and spec (each pass reads the live object for the rest). Not
    keeping managedFields, annotations and status saves most of the memory per object."""
    meta = body.get("metadata") or {}
    kept = {key: meta[key] for key in ("namespace", "name", "uid", "generation") if key in meta}
    return {"metadata": kept, "spec": body.get("spec")}


class Known:
    """The LLMDeployments the watch has delivered (latest body each), by (namespace, name)."""

    def __init__(self) -> None:
        self._bodies: dict[Key, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def seen(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        namespace, name = meta.get("namespace"), meta.get("name")
        if not namespace or not name:
            return
        with self._lock:
            if event_type == "DELETED":
                self._bodies.pop((namespace, name), None)
            else:
                self._bodies[(namespace, name)] = _essentials(body)

    def snapshot(self) -> list[tuple[Key, dict[str, Any]]]:
        with self._lock:
            return sorted(self._bodies.items(), key=lambda item: item[0])

    def __len__(self) -> int:
        with self._lock:
            return len(self._bodies)


PassFn = Callable[[dict[str, Any]], None]


class ResyncLoop:
    """Every `interval` seconds, run `one_pass(body)` for each known object, at most `concurrency` at a time."""

    def __init__(self, known: Known, one_pass: PassFn, interval: float, concurrency: int = 4) -> None:
        self.known = known
        self.one_pass = one_pass
        self.interval = interval
        self.concurrency = max(1, concurrency)
        self.passes = 0  # completed ticks (for tests and logs)

    def _safe_pass(self, body: dict[str, Any]) -> None:
        meta = body.get("metadata") or {}
        try:
            self.one_pass(body)
        except Exception:  # one bad object or a transient API error must not stop the loop
            log.exception("%s/%s: periodic pass failed", meta.get("namespace"), meta.get("name"))

    async def tick(self, executor: Executor | None) -> None:
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(self.concurrency)

        async def run(body: dict[str, Any]) -> None:
            async with gate:
                await loop.run_in_executor(executor, contextvars.copy_context().run, self._safe_pass, body)

        await asyncio.gather(*(run(body) for _, body in self.known.snapshot()))
        self.passes += 1
        release_free_memory()  # after every pass: a few ms, and RSS follows what is really in use

    async def run_forever(self, executor: Executor | None, initial_delay: float = 0.0) -> None:
        await asyncio.sleep(initial_delay)
        while True:
            started = time.monotonic()
            await self.tick(executor)
            took = time.monotonic() - started
            if took > self.interval:
                log.warning("a periodic pass over %d objects took %.1f s > interval %.1f s", len(self.known), took,
                            self.interval)  # fmt: skip
            await asyncio.sleep(max(0.0, self.interval - took))
