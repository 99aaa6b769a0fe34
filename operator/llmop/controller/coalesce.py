"""Coalesce reconcile requests per object: one run at a time, and every request made during a run shares one
follow-up run (a work queue's de-duplication, in the event loop, so no thread waits on another's lock)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar, cast

T = TypeVar("T")


class Coalescer:
    """`await run(key, fn)` returns once a run of `fn` that started after the call has finished (its result, or
    its exception). Only touched from one event loop, so it needs no locks."""

    def __init__(self) -> None:
        self._running: set[Hashable] = set()
        self._follow_up: dict[Hashable, asyncio.Future[Any]] = {}
        self.coalesced = 0  # requests that shared another request's run (for metrics and tests)

    def busy(self, key: Hashable) -> bool:
        return key in self._running

    async def run(self, key: Hashable, fn: Callable[[], Awaitable[T]]) -> T:
        if key in self._running:
            future = self._follow_up.get(key)
            if future is None:
                future = self._follow_up[key] = asyncio.get_running_loop().create_future()
            else:
                self.coalesced += 1
            return cast(T, await asyncio.shield(future))
        self._running.add(key)
        try:
            result = await fn()
        except BaseException:
            await self._drain(key, fn)
            raise
        await self._drain(key, fn)
        return result

    async def _drain(self, key: Hashable, fn: Callable[[], Awaitable[object]]) -> None:
        """Run the follow-ups requested meanwhile, one at a time, then free the key."""
        try:
            while (future := self._follow_up.pop(key, None)) is not None:
                try:
                    future.set_result(await fn())
                except asyncio.CancelledError:
                    future.cancel()
                    raise
                except Exception as error:
                    future.set_exception(error)
                    future.exception()  # retrieved: callers that went away leave no "never retrieved" warning
        finally:
            self._running.discard(key)
            leftover = self._follow_up.pop(key, None)
            if leftover is not None and not leftover.done():
                leftover.cancel()
