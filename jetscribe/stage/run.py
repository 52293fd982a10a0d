"""Running one stage worker process (`jetscribe worker`, `jetscribe diarizer`) until SIGTERM or SIGINT, then
shutting it down gracefully: the lifecycle both commands share."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from nats.aio.client import Client

from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.errors import ConfigError

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StageWorker(Protocol):
    """What `run_stage` needs of a running worker."""

    @property
    def worker_id(self) -> str: ...

    @property
    def jobs_done(self) -> int: ...

    async def wait(self) -> None:
        """Return when the worker's loops end (only a failure ends them without a stop), raising its error."""


async def run_stage(
    settings: Settings,
    role: str,
    start: Callable[[Settings, Client], AbstractAsyncContextManager[StageWorker]],
) -> None:
    """Connect to `settings.nats_url` as `jetscribe-<role>@<host>` and run the worker `start` makes until a stop
    signal; then stop it (leaving its `async with`) and drain the connection. `role` names it in messages
    (`worker`, `diarizer`). Raises ConfigError without a NATS URL, and whatever ended the worker's loops."""
    if not settings.nats_url:
        raise ConfigError(
            f"the {role} needs a NATS server: set JETSCRIBE_NATS_URL (e.g. nats://localhost:4222); "
            f"`jetscribe serve` runs an embedded one with a {role} beside it"
        )
    nc = await connect(settings, settings.nats_url, name=f"jetscribe-{role}@{socket.gethostname()}")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        async with start(settings, nc) as worker:
            log.info("%s %s ready for jobs", role, worker.worker_id)
            signalled = asyncio.create_task(stop.wait())
            ended = asyncio.create_task(worker.wait())
            done, pending = await asyncio.wait((signalled, ended), return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if ended in done:
                ended.result()  # the loops ended without a signal: only a failure does that; raise it
            log.info("%s %s stopping: %d jobs done", role, worker.worker_id, worker.jobs_done)
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        await nc.drain()
