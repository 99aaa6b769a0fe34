"""Liveness and readiness of the operator process: the kopf event loop's heartbeat and the leader Lease."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger("llmop.health")


class Health:
    """What /healthz and /readyz answer. The event loop beats (`heartbeat`); a loop that stops beating for
    `stall_s` is wedged. A lost Lease is final: the process is on its way out."""

    def __init__(self, stall_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_s = stall_s
        self._clock = clock
        self._lock = threading.Lock()
        self._beat: float | None = None  # the loop's last heartbeat; None until the loop runs
        self._lost: str | None = None
        self._standby = False  # waiting for the Lease: healthy and ready, the loop not started yet

    def beat(self) -> None:
        with self._lock:
            self._beat = self._clock()

    def standby(self) -> None:
        """This replica waits for the Lease (another one leads)."""
        with self._lock:
            self._standby = True

    def lose(self, why: str) -> None:
        """The leader Lease is lost (taken, not renewed, or given up): fail from now on."""
        with self._lock:
            self._lost = self._lost or why

    def stalled(self) -> str | None:
        """Why the event loop counts as wedged, or None while it beats (or has not started)."""
        with self._lock:
            beat = self._beat
        if beat is None:
            return None
        silent = self._clock() - beat
        if silent <= self.stall_s:
            return None
        return f"the event loop made no progress for {silent:.0f} s (limit {self.stall_s:g} s)"

    def liveness(self) -> list[str]:
        """Problems that call for a restart; empty when live."""
        with self._lock:
            lost = self._lost
        stalled = self.stalled()
        return [problem for problem in (stalled, f"lost the leader Lease: {lost}" if lost else None) if problem]

    def readiness(self) -> list[str]:
        """Liveness problems, plus not having started: ready while standing by or while the loop beats."""
        problems = self.liveness()
        with self._lock:
            started = self._standby or self._beat is not None
        return problems if started else [*problems, "starting"]


async def heartbeat(health: Health, interval_s: float = 1.0) -> None:
    """Beat every `interval_s` from the event loop until cancelled: a wedged loop stops beating."""
    while True:
        health.beat()
        await asyncio.sleep(interval_s)


def exit_after(grace_s: float, why: str, exit_code: int = 3) -> threading.Thread:
    """Exit the process hard after `grace_s` unless it has ended by then (a daemon thread dies with it)."""

    def wait_then_exit() -> None:
        time.sleep(grace_s)
        log.error("%s and the operator did not stop within %.0f s: exiting", why, grace_s)
        logging.shutdown()
        os._exit(exit_code)

    thread = threading.Thread(target=wait_then_exit, name="llmop-exit", daemon=True)
    thread.start()
    return thread
