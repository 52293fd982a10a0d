"""Gateway test fixtures: the real gateway on loopback, on a real nats-server, and an HTTP client for it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from gateway.main import GatewayServer
from jetscribe.config import Settings
from jetscribe.topology import Topology, ensure_topology
from schemas import names

AUDIO = Path(__file__).parents[1] / "fixtures" / "audio"
TEXTS: dict[str, str] = json.loads((AUDIO / "texts.json").read_text())

StartGateway = Callable[..., Awaitable[tuple[GatewayServer, aiohttp.ClientSession]]]


@pytest.fixture
async def start_gateway(settings: Settings, nc: Client) -> AsyncIterator[StartGateway]:
    """Start a gateway with `settings` changed by keyword arguments; returns it and a client session for it."""
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> tuple[GatewayServer, aiohttp.ClientSession]:
            changed = msgspec.structs.replace(settings, **overrides)
            topology = await ensure_topology(nc.jetstream(), changed)
            server = await stack.enter_async_context(GatewayServer(changed, nc, topology))
            session = await stack.enter_async_context(aiohttp.ClientSession(base_url=server.url))
            return server, session

        yield start


@pytest.fixture
async def served(start_gateway: StartGateway) -> tuple[GatewayServer, aiohttp.ClientSession]:
    """One gateway with the test's settings, and a client session for it."""
    return await start_gateway()


@pytest.fixture
def gateway(served: tuple[GatewayServer, aiohttp.ClientSession]) -> GatewayServer:
    return served[0]


@pytest.fixture
def http(served: tuple[GatewayServer, aiohttp.ClientSession]) -> aiohttp.ClientSession:
    return served[1]


def tenants_file(directory: Path, tenants: dict[str, dict[str, Any]]) -> Path:
    """Write a tenants file: each tenant's plain `keys` become their SHA-256 digests; other fields as given."""
    lines: list[str] = []
    for name, table in tenants.items():
        lines.append(f"[tenants.{name}]")
        digests = [hashlib.sha256(key.encode()).hexdigest() for key in table.get("keys", ())]
        lines.append(f"key_sha256 = {json.dumps(digests)}")
        lines.extend(f"{field} = {json.dumps(value)}" for field, value in table.items() if field != "keys")
    path = directory / "tenants.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def audio_form(path: Path | None = AUDIO / "en1.wav", *, audio_first: bool = True, **fields: str) -> aiohttp.FormData:
    """A submission form; `audio_first=False` puts the text fields before the audio part."""
    form = aiohttp.FormData(default_to_multipart=True)
    if path is not None and audio_first:
        form.add_field("audio", path.read_bytes(), filename=path.name, content_type="application/octet-stream")
    for name, value in fields.items():
        form.add_field(name, value)
    if path is not None and not audio_first:
        form.add_field("audio", path.read_bytes(), filename=path.name, content_type="application/octet-stream")
    return form


async def object_names(topology: Topology) -> list[str]:
    """Names of the (non-deleted) objects in the audio bucket."""
    try:
        return [info.name for info in await topology.audio.list(ignore_deletes=True)]
    except NotFoundError:
        return []


async def audio_chunks(js: JetStreamContext) -> int:
    """How many chunk messages the audio bucket's stream holds (0 when no upload left anything behind)."""
    info = await js.stream_info(
        names.object_stream(names.AUDIO_BUCKET), subjects_filter=names.object_chunk_subject(names.AUDIO_BUCKET)
    )
    return sum((info.state.subjects or {}).values())


class ServerSentEvent(msgspec.Struct):
    event: str
    data: Any
    id: str | None


async def read_events(
    response: aiohttp.ClientResponse, *, stop_after: int | None = None
) -> tuple[list[ServerSentEvent], list[str]]:
    """Parse an event stream until it closes (or `stop_after` events); returns the events and the comments."""
    events: list[ServerSentEvent] = []
    comments: list[str] = []
    fields: dict[str, str] = {}
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith(":"):
            comments.append(line[1:].strip())
        elif line:
            name, _, value = line.partition(":")
            fields[name] = fields.get(name, "") + value.removeprefix(" ")
        elif "data" in fields:
            events.append(ServerSentEvent(fields.get("event", "message"), json.loads(fields["data"]), fields.get("id")))
            fields = {}
            if stop_after is not None and len(events) >= stop_after:
                break
    return events, comments
