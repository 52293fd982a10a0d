"""Running the gateway: as `jetscribe gateway`, or inside `jetscribe serve`."""

from __future__ import annotations

import asyncio
import logging
import signal
from types import TracebackType
from typing import Final, Self

from aiohttp import web
from nats.aio.client import Client

from gateway import limits
from gateway.app import create_app
from jetscribe.broker import close_connection, connect
from jetscribe.config import Settings
from jetscribe.errors import ConfigError
from jetscribe.topology import Topology, ensure_topology

log = logging.getLogger(__name__)

# In-flight requests (uploads, event streams) get this long to finish when the gateway stops.
SHUTDOWN_TIMEOUT_S: Final = 10.0


class GatewayServer:
    """The gateway app listening on `settings.host:settings.port` until the context exits."""

    def __init__(self, settings: Settings, nc: Client, topology: Topology) -> None:
        self._app = create_app(settings, nc, topology)
        self._settings = settings
        self._runner: web.AppRunner | None = None

    @property
    def app(self) -> web.Application:
        return self._app

    @property
    def url(self) -> str:
        """`http://host:port` of the bound socket (the real port when configured as 0)."""
        if self._runner is None:
            raise RuntimeError("the gateway is not running")
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def __aenter__(self) -> Self:
        if self._runner is not None:
            raise RuntimeError("this GatewayServer is already running")
        runner = web.AppRunner(
            self._app, shutdown_timeout=SHUTDOWN_TIMEOUT_S, access_log=None, **limits.runner_options(self._settings)
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self._settings.host, self._settings.port).start()
        except OSError as exc:
            await runner.cleanup()
            where = f"{self._settings.host}:{self._settings.port}"
            raise ConfigError(f"cannot listen on {where} ({exc.strerror}); set PORT to a free port") from exc
        self._runner = runner
        log.info("gateway listening on %s", self.url)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            # Closes the listening socket first, then waits for in-flight requests, then runs cleanup_ctx.
            await runner.cleanup()


def stop_event() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (installed on the running loop)."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, event.set)
    return event


async def run_gateway(settings: Settings) -> None:
    """`jetscribe gateway`: connect to NATS, ensure the topology, serve HTTP until SIGINT or SIGTERM."""
    if settings.nats_url is None:
        raise ConfigError("the gateway alone needs JETSCRIBE_NATS_URL (or run `jetscribe serve` for everything)")
    stopping = stop_event()
    nc = await connect(settings, settings.nats_url, name="jetscribe-gateway")
    try:
        topology = await ensure_topology(nc.jetstream(), settings)
        async with GatewayServer(settings, nc, topology):
            await stopping.wait()
            log.info("stopping the gateway")
    finally:
        # After HTTP has stopped: deliver what is still buffered, then close.
        await close_connection(nc)
