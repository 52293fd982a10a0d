"""A real nats-server that stops answering: SIGSTOP for the length of a `with` block, SIGCONT after."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from jetscribe.embedded import EmbeddedNats


def process_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@contextlib.asynccontextmanager
async def paused(server: EmbeddedNats) -> AsyncIterator[None]:
    """The server is stopped (as the kernel reports it: signal delivery is asynchronous) inside the block."""
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        async with asyncio.timeout(5):
            while True:
                if process_state(pid) == "T":
                    break
                await asyncio.sleep(0.01)
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
