"""`jetscribe serve`: the whole service on one machine — NATS (embedded unless configured), the gateway in this
process, and the worker and the diarization worker each in a child process (`cli.supervisor`) that is restarted if
it dies, so a worker that runs out of memory never takes the gateway or the embedded nats-server with it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Final

import msgspec

from cli.supervisor import WorkerSupervisor
from gateway.main import GatewayServer, stop_event
from jetscribe.broker import close_connection, connect
from jetscribe.config import Settings
from jetscribe.embedded import EmbeddedNats
from jetscribe.nats_credentials import load_or_create
from jetscribe.topology import ensure_topology
from worker.engine import engine_spec

log = logging.getLogger(__name__)

DEFAULT_NATS_PORT: Final = 4222
EMBEDDED_HOST: Final = "127.0.0.1"


def embedded_port() -> int:
    """NATS's usual port when it is free, so other tools find the server; otherwise any free port (0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((EMBEDDED_HOST, DEFAULT_NATS_PORT))
        except OSError:
            return 0
    return DEFAULT_NATS_PORT


async def serve(settings: Settings) -> None:
    """Run NATS (embedded unless `nats_url` is set), a worker and the gateway until SIGINT or SIGTERM.

    The models are resolved first (imported from an installed PyPI package on first use), so a
    missing model fails before anything starts. The gateway declares the models of its own worker:
    a job submitted while the worker loads them waits for it instead of being refused.
    """
    stopping = stop_event()
    for name in settings.served_models:
        spec = await asyncio.to_thread(engine_spec, settings, name)
        log.info("model %s on %s: %s", name, spec.kind, spec.path)
    credentials = None
    if settings.nats_url is None:
        # The embedded server listens on loopback only and requires generated credentials: its store holds every
        # tenant's audio and transcripts, which the API keys guard on HTTP.
        credentials = await asyncio.to_thread(load_or_create, settings.nats_credentials_file)
        settings = msgspec.structs.replace(
            settings, nats_user=credentials.user, nats_password=credentials.password, nats_token=None, nats_creds=None
        )
    declared = (*settings.declared_models, *(m for m in settings.served_models if m not in settings.declared_models))
    gateway_settings = msgspec.structs.replace(settings, declared_models=declared)
    # The exit stack unwinds in reverse order of entry, which gives the shutdown order:
    # 1. stop accepting HTTP (in-flight requests finish, event streams end),
    # 2. stop the worker process (SIGTERM: running jobs get the grace period, then go back to the queue),
    # 3. drain the NATS connection (buffered publishes and acks are flushed),
    # 4. stop the embedded nats-server (it flushes JetStream to disk).
    async with contextlib.AsyncExitStack() as stack:
        url = settings.nats_url
        if url is None:
            server = EmbeddedNats(
                settings.nats_store_dir,
                host=EMBEDDED_HOST,
                port=embedded_port(),
                own_session=True,
                credentials=credentials,
            )
            await stack.enter_async_context(server)
            url = server.url
            log.info("embedded NATS at %s (pid %s, JetStream store %s)", url, server.pid, server.store_dir)
            log.info(
                "NATS clients need the user and password kept in %s (owner-only), e.g. the nats CLI: "
                "set -a; . %s; set +a; nats --server %s stream ls",
                settings.nats_credentials_file,
                settings.nats_credentials_file,
                url,
            )
        else:
            log.info("using NATS at %s", url)
        nc = await connect(settings, url, name="jetscribe-serve")
        stack.push_async_callback(close_connection, nc)
        topology = await ensure_topology(nc.jetstream(), settings)
        worker = await stack.enter_async_context(WorkerSupervisor(settings, url, stopping))
        # Diarization (jobs with `diarize`) in a process of its own too: CPU work that never holds a Whisper slot.
        await stack.enter_async_context(WorkerSupervisor(settings, url, stopping, command="diarizer"))
        gateway = await stack.enter_async_context(GatewayServer(gateway_settings, nc, topology))
        log.info("jetscribe is ready at %s (API docs at %s/docs); Ctrl-C stops it", gateway.url, gateway.url)
        await stopping.wait()
        log.info("stopping: HTTP, then the worker (process %s), then NATS", worker.pid)
    log.info("stopped")
