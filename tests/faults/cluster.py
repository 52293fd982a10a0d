"""A three-node nats-server cluster on loopback, for fault tests that kill a stream leader."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import ClusterInfo

from jetscribe.embedded import EmbeddedNats
from tests.ports import free_port

CLUSTER_NAME: Final = "jetscribe-faults"
META_READY_TIMEOUT_S: Final = 30.0


def cluster_block(listen_port: int, route_ports: list[int]) -> str:
    """The `cluster {}` stanza of one node: its own route listener and routes to every node."""
    routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in route_ports)
    return f"cluster {{\n  name: {CLUSTER_NAME}\n  listen: 127.0.0.1:{listen_port}\n  routes: [{routes}]\n}}\n"


class NatsCluster:
    """`size` EmbeddedNats nodes routed to each other; each keeps its client port and store across restarts."""

    def __init__(self, root: Path, size: int = 3) -> None:
        self.client_ports = [free_port() for _ in range(size)]
        route_ports = [free_port() for _ in range(size)]
        self.nodes = [
            EmbeddedNats(
                root / f"n{i}",
                port=self.client_ports[i],
                server_name=f"n{i}",
                extra_config=cluster_block(route_ports[i], route_ports),
            )
            for i in range(size)
        ]

    @property
    def url(self) -> str:
        """Every node's client URL, comma-separated (as `JETSCRIBE_NATS_URL` takes them)."""
        return ",".join(f"nats://127.0.0.1:{p}" for p in self.client_ports)

    def node(self, server_name: str) -> EmbeddedNats:
        return next(n for n in self.nodes if n.server_name == server_name)

    async def __aenter__(self) -> Self:
        # A node is "ready" once it listens; it must not wait for the others, so start all at once.
        await asyncio.gather(*(asyncio.to_thread(n.start) for n in self.nodes))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.gather(*(asyncio.to_thread(n.stop) for n in self.nodes))

    async def wait_for_jetstream(self, nc: Client) -> None:
        """Wait until the cluster has elected its JetStream meta leader (API calls fail before that)."""
        js = nc.jetstream()
        async with asyncio.timeout(META_READY_TIMEOUT_S):
            while True:
                try:
                    await js.account_info()
                    return
                except (NatsError, TimeoutError):
                    await asyncio.sleep(0.25)


async def wait_until_replicated(nc: Client) -> None:
    """Wait until every replica of every stream (KV buckets and object stores included) and of every consumer
    is current.

    Killing a leader while a freshly created raft group's followers are still catching up can leave the
    group without a leader (observed: no election within 60 s); a cluster in service is past that point.
    The node killed usually leads more groups than the one a test aims at (the job records' bucket, the
    events stream), so all of them must be past it.
    """
    js = nc.jetstream()
    async with asyncio.timeout(META_READY_TIMEOUT_S):
        while True:
            if await _all_current(js):
                return
            await asyncio.sleep(0.25)


async def _all_current(js: JetStreamContext) -> bool:
    clusters: list[ClusterInfo | None] = []
    for stream in await js.streams_info():
        clusters.append(stream.cluster)
        clusters.extend(c.cluster for c in await js.consumers_info(stream.config.name))
    return all(c is not None and c.leader and all(p.current for p in c.replicas or []) for c in clusters)
