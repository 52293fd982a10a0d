"""Connecting to NATS with the options a long-running service needs (see notes on outages)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any, Final

import nats
from nats.aio.client import Client

from jetscribe.config import Settings
from jetscribe.errors import NatsUnavailableError

log = logging.getLogger(__name__)

_REFUSALS: Final = ("authorization violation", "authentication", "user authentication expired")


def is_refusal(exc: BaseException) -> bool:
    """Whether `exc` means the server refused these credentials or this TLS setup: retrying cannot help."""
    if isinstance(exc, nats.errors.AuthorizationError | ssl.SSLError):
        return True
    return isinstance(exc, nats.errors.Error) and any(r in str(exc).lower() for r in _REFUSALS)


async def connect(settings: Settings, url: str, *, name: str) -> Client:
    """Connect to `url` (comma-separated servers) with unbounded reconnects and a short ping.

    nats-py gives up after ~2 minutes of outage by default; a worker or gateway must instead
    ride out any outage and resume on its own.
    """

    # Reconnects are unbounded, so nats-py would retry refused credentials forever at start-up:
    # the first refusal before the connection is up ends the attempt with a clear error instead.
    refused: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def on_error(exc: Exception) -> None:
        log.warning("NATS error: %s", exc)
        if not refused.done() and is_refusal(exc):
            refused.set_result(exc)

    async def on_disconnect() -> None:
        if client.is_closed:
            log.debug("NATS connection closed")
        else:
            log.warning("disconnected from NATS; reconnecting")

    async def on_reconnect() -> None:
        log.info("reconnected to NATS")

    client = Client()
    connecting = asyncio.ensure_future(
        client.connect(
            servers=[s.strip() for s in url.split(",")],
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            ping_interval=5,
            max_outstanding_pings=3,
            connect_timeout=5,
            drain_timeout=10,
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
            **credentials(settings),
        )
    )
    try:
        await asyncio.wait((connecting, refused), return_when=asyncio.FIRST_COMPLETED)
        if not connecting.done():
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connecting
            await client.close()
            exc = refused.result()
            raise NatsUnavailableError(
                f"NATS at {url} refused this client ({exc}): check JETSCRIBE_NATS_USER / _PASSWORD / _TOKEN / "
                "_CREDS and the TLS settings"
            ) from exc
        connecting.result()
    except (OSError, TimeoutError, nats.errors.NoServersError) as exc:
        raise NatsUnavailableError(f"cannot connect to NATS at {url}: {exc}") from exc
    finally:
        if not refused.done():
            refused.cancel()
    return client


def credentials(settings: Settings) -> dict[str, Any]:
    """The `nats.connect` options that authenticate this client: user/password, token, creds file, TLS."""
    return {
        "user": settings.nats_user,
        "password": settings.nats_password,
        "token": settings.nats_token,
        "user_credentials": str(settings.nats_creds) if settings.nats_creds else None,
        "tls": _tls_context(settings),
    }


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not (settings.nats_tls_ca or settings.nats_tls_cert):
        return None
    context = ssl.create_default_context(cafile=str(settings.nats_tls_ca) if settings.nats_tls_ca else None)
    if settings.nats_tls_cert:
        key = str(settings.nats_tls_key) if settings.nats_tls_key else None
        context.load_cert_chain(str(settings.nats_tls_cert), key)
    return context


async def close_connection(nc: Client) -> None:
    """Drain `nc` (flushing buffered publishes and acks); just close it when NATS is unreachable by then."""
    try:
        await nc.drain()
    except (nats.errors.ConnectionReconnectingError, nats.errors.ConnectionClosedError):
        log.warning("NATS was unreachable at shutdown: closing the connection without draining it")
        await nc.close()
