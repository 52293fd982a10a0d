"""Container health check of a jetscribe worker: is the worker on this host heartbeating?

A worker has no HTTP port; its sign of life is the heartbeat it writes to the workers KV bucket
every few seconds (the bucket's TTL drops stale ones). The worker images run this script as their
HEALTHCHECK and Kubernetes as the worker's liveness probe. Exit status:

- 0: a heartbeat from this host (`socket.gethostname()`, the container's or pod's name) is present;
- 0 as well when NATS cannot be reached: an outage is not the worker's fault, restarting it would not
  cure it, and the worker reconnects on its own (the gateway's readiness reports the outage);
- 1: NATS answers but holds no heartbeat from this host: the worker is hung or never got going.

NATS address and credentials come from the same environment as the worker (`jetscribe.config`).
"""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Final
from urllib.parse import urlsplit

import msgspec
import nats
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NoKeysError

from jetscribe.broker import credentials
from jetscribe.config import Settings
from schemas import names
from schemas.workers import WorkerHeartbeat

CHECK_TIMEOUT_S: Final = 8.0
CONNECT_TIMEOUT_S: Final = 3
HEALTHY: Final = 0
UNHEALTHY: Final = 1
_decode_heartbeat = msgspec.json.Decoder(WorkerHeartbeat).decode


async def reachable(servers: list[str]) -> bool:
    """Whether any server accepts a TCP connection (nats-py itself retries a refused first connect forever)."""
    for server in servers:
        url = urlsplit(server if "://" in server else f"nats://{server}")
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                _, writer = await asyncio.open_connection(url.hostname, url.port or 4222)
        except (OSError, TimeoutError):
            continue
        writer.close()
        await writer.wait_closed()
        return True
    return False


async def heartbeating_workers(settings: Settings, host: str) -> list[str] | None:
    """Ids of the workers on `host` with a live heartbeat; None when NATS cannot be reached."""
    servers = [s.strip() for s in (settings.nats_url or "").split(",") if s.strip()]
    if not servers or not await reachable(servers):
        return None

    async def ignore(exc: Exception) -> None:
        """Connection errors are this check's answer, not log noise."""

    try:
        nc = await nats.connect(
            servers=servers,
            name="jetscribe-healthcheck",
            allow_reconnect=False,
            connect_timeout=CONNECT_TIMEOUT_S,
            error_cb=ignore,
            **credentials(settings),
        )
    except (OSError, TimeoutError, nats.errors.Error):
        return None
    try:
        kv = await nc.jetstream().key_value(names.WORKERS_BUCKET)
        found = []
        for key in await kv.keys():
            try:
                entry = await kv.get(key)
            except KeyNotFoundError:
                continue  # expired between listing and reading
            if entry.value and _decode_heartbeat(entry.value).host == host:
                found.append(key)
        return found
    except (BucketNotFoundError, NoKeysError):
        return []
    finally:
        await nc.close()


async def check(settings: Settings, host: str) -> tuple[int, str]:
    """The exit status for `host`, with a line that says why."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            workers = await heartbeating_workers(settings, host)
    except TimeoutError:
        workers = None
    if workers is None:
        return HEALTHY, f"NATS at {settings.nats_url} is unreachable; not blaming the worker"
    if not workers:
        return UNHEALTHY, f"no heartbeat from a worker on {host} in {names.WORKERS_BUCKET}"
    return HEALTHY, f"{len(workers)} worker(s) on {host} heartbeating: {', '.join(workers)}"


def main() -> int:
    status, reason = asyncio.run(check(Settings.from_env(), socket.gethostname()))
    print(reason, file=sys.stderr if status else sys.stdout)
    return status


if __name__ == "__main__":
    sys.exit(main())
