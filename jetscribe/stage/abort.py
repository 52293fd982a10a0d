"""A job's abort flag, readable from the whisper thread and awaitable on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import Awaitable
from typing import TypeVar

from jetscribe.stage.errors import AbortReason, JobAbortedError

T = TypeVar("T")


class AbortSignal:
    """Set once, by the event loop, when a job is cancelled, runs out of time or is handed back; the first
    reason wins."""

    def __init__(self) -> None:
        self._flag = threading.Event()
        self._event = asyncio.Event()
        self.reason: AbortReason | None = None
        self.detail: str | None = None
        """Words for the job's error when the reason needs them (the time limit it ran past)."""

    def trigger(self, reason: AbortReason, detail: str | None = None) -> None:
        """Call on the event loop's thread."""
        if self.reason is None:
            self.reason = reason
            self.detail = detail
        self._flag.set()
        self._event.set()

    def is_set(self) -> bool:
        """Thread-safe: whisper.cpp's abort callback polls this."""
        return self._flag.is_set()

    def check(self) -> None:
        """Raise JobAbortedError if the signal is set."""
        if self.reason is not None:
            raise JobAbortedError(self.reason)

    async def guard(self, awaitable: Awaitable[T]) -> T:
        """Await `awaitable`, cancelling it and raising JobAbortedError if the signal fires first.

        An awaitable the signal makes pointless is still closed: a coroutine is never left un-awaited.
        """
        if self.reason is not None:
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            elif isinstance(awaitable, asyncio.Future):
                awaitable.cancel()
            self.check()
        task = asyncio.ensure_future(awaitable)
        waiter = asyncio.ensure_future(self._event.wait())
        try:
            await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if task.cancelled():
            self.check()
        return task.result()
