"""`jetscribe diarizer`: run one diarization worker until SIGTERM or SIGINT, then shut down gracefully."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket

from diarization.service import DiarizationWorker
from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.errors import ConfigError

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_diarizer(settings: Settings) -> None:
    """Connect to `settings.nats_url` and run a DiarizationWorker until a stop signal; then stop it and drain."""
    if not settings.nats_url:
        raise ConfigError(
            "the diarizer needs a NATS server: set JETSCRIBE_NATS_URL (e.g. nats://localhost:4222); "
            "`jetscribe serve` runs an embedded one with a diarizer beside it"
        )
    nc = await connect(settings, settings.nats_url, name=f"jetscribe-diarizer@{socket.gethostname()}")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        async with DiarizationWorker(settings, nc) as worker:
            log.info("diarization worker %s ready for jobs", worker.worker_id)
            signalled = asyncio.create_task(stop.wait())
            ended = asyncio.create_task(worker.wait())
            done, pending = await asyncio.wait((signalled, ended), return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if ended in done:
                ended.result()  # the loops ended without a signal: only a failure does that; raise it
            log.info("diarization worker %s stopping: %d jobs done", worker.worker_id, worker.jobs_done)
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        await nc.drain()
