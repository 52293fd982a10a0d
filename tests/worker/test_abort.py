"""AbortSignal.guard: an abort stops what it guards, and never leaves a coroutine un-awaited."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from jetscribe.stage.abort import AbortSignal
from jetscribe.stage.errors import JobAbortedError


async def fetch_audio() -> bytes:
    await asyncio.sleep(3600)
    return b"never"


async def test_guarding_after_an_abort_raises_and_closes_the_coroutine() -> None:
    abort = AbortSignal()
    abort.trigger("cancelled")
    work = fetch_audio()

    with pytest.raises(JobAbortedError):
        await abort.guard(work)

    assert inspect.getcoroutinestate(work) == inspect.CORO_CLOSED


async def test_an_abort_cancels_the_guarded_work_and_names_its_reason() -> None:
    abort = AbortSignal()
    guarded = asyncio.create_task(abort.guard(fetch_audio()))
    await asyncio.sleep(0.05)

    abort.trigger("timeout", "the job ran out of time while fetching the audio")

    with pytest.raises(JobAbortedError) as raised:
        await guarded
    assert raised.value.reason == "timeout"
    assert abort.detail == "the job ran out of time while fetching the audio"
