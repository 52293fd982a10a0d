"""Slow clients: trickled headers, stalled uploads and too many uploads at once, over raw sockets.

Each test bounds its slow clients in number and time; normal requests alongside them are answered.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import aiohttp
import pytest
from nats.js import JetStreamContext
from yarl import URL

from gateway.main import GatewayServer
from jetscribe.topology import Topology
from tests.gateway.conftest import StartGateway, audio_chunks, audio_form, object_names

HEADER_TIMEOUT_S = 1.0
IDLE_TIMEOUT_S = 1.0
SLOW_HEADER_CLIENTS = 50
HEADER_LINES = 30
LINE_INTERVAL_S = 0.3
BOUNDARY = "slow-client-boundary"
KEYS = ("key-of-team-a-0123456789", "key-of-team-b-9876543210")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, str]


@dataclass
class RawClient:
    """One TCP connection to the gateway, written and read by hand."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self) -> Answer:
        status_line = await self.reader.readline()
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers["content-length"]))
        return Answer(int(status_line.split()[1]), headers, json.loads(body))

    async def closed_by_server(self) -> bool:
        """Whether the server closed the connection (EOF) without sending a byte."""
        return await self.reader.read(1) == b""


RawClientFactory = Callable[..., Awaitable[RawClient]]
"""`await raw_clients(gateway, source="127.0.0.2")` connects from `source`; closed when the test ends."""


@pytest.fixture
async def raw_clients() -> AsyncIterator[RawClientFactory]:
    async with AsyncExitStack() as stack:

        async def open_client(gateway: GatewayServer, *, source: str = "127.0.0.1") -> RawClient:
            url = URL(gateway.url)
            reader, writer = await asyncio.open_connection(url.host, url.port, local_addr=(source, 0))
            stack.callback(writer.close)
            return RawClient(reader, writer)

        yield open_client


def multipart_framing() -> tuple[bytes, bytes]:
    """What precedes and what follows the audio bytes in the body of a one-part upload."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head, f"\r\n--{BOUNDARY}--\r\n".encode()


def upload_headers(body_bytes: int, *, key: str | None = None) -> bytes:
    lines = [
        "POST /jobs HTTP/1.1",
        "Host: gateway",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        f"Content-Length: {body_bytes}",
    ]
    if key is not None:
        lines.append(f"Authorization: Bearer {key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def stalled_upload(
    client: RawClient, *, sent: int = 300_000, size: int = 1_000_000, key: str | None = None
) -> None:
    """Start an upload of `size` audio bytes, send the first `sent` of them, and stop."""
    head, tail = multipart_framing()
    await client.send(upload_headers(len(head) + size + len(tail), key=key) + head + b"\x01" * sent)


async def uploading(js: JetStreamContext, count: int) -> None:
    """Wait until the gateway is writing `count` stalled uploads (each has stored its first two chunks)."""
    while True:
        if await audio_chunks(js) >= 2 * count:
            return
        await asyncio.sleep(0.02)


async def trickle_headers(client: RawClient) -> int:
    """Send a request line, then one header line every LINE_INTERVAL_S; returns the lines sent before the cut."""
    await client.send(b"GET /livez HTTP/1.1\r\nHost: gateway\r\n")
    for sent in range(HEADER_LINES):
        await asyncio.sleep(LINE_INTERVAL_S)
        try:
            await client.send(f"X-Slow-{sent}: {'v' * 40}\r\n".encode())
        except ConnectionError:
            return sent
    return HEADER_LINES


async def test_clients_trickling_headers_are_closed_at_the_deadline_while_normal_requests_are_served(
    start_gateway: StartGateway, raw_clients: RawClientFactory
) -> None:
    gateway, http = await start_gateway(header_timeout_s=HEADER_TIMEOUT_S)
    slow = [await raw_clients(gateway) for _ in range(SLOW_HEADER_CLIENTS)]
    opened = time.monotonic()
    trickling = [asyncio.create_task(trickle_headers(client)) for client in slow]

    statuses = []
    for _ in range(10):
        async with http.get("/livez") as response:
            statuses.append(response.status)
    served_while_held = not any(task.done() for task in trickling)
    closed = [await client.closed_by_server() for client in slow]
    held_s = time.monotonic() - opened
    lines_sent = await asyncio.gather(*trickling)

    assert statuses == [200] * 10
    assert served_while_held
    assert all(closed)
    assert held_s >= HEADER_TIMEOUT_S
    assert max(lines_sent) < HEADER_LINES, "a slow client got to send all its headers"


async def test_connection_that_sends_nothing_is_closed_at_the_header_deadline(
    start_gateway: StartGateway, raw_clients: RawClientFactory
) -> None:
    gateway, _ = await start_gateway(header_timeout_s=HEADER_TIMEOUT_S)
    client = await raw_clients(gateway)
    opened = time.monotonic()

    assert await client.closed_by_server()
    assert time.monotonic() - opened >= HEADER_TIMEOUT_S


async def test_keep_alive_connection_serves_requests_sent_within_the_deadline(start_gateway: StartGateway) -> None:
    _, http = await start_gateway(header_timeout_s=HEADER_TIMEOUT_S)

    for _ in range(3):
        async with http.get("/livez") as response:
            assert response.status == 200
        await asyncio.sleep(HEADER_TIMEOUT_S / 4)


async def test_upload_that_stops_sending_is_cut_off_with_408_json_and_keeps_nothing(
    start_gateway: StartGateway, raw_clients: RawClientFactory, topology: Topology, js: JetStreamContext
) -> None:
    gateway, _ = await start_gateway(upload_idle_timeout_s=IDLE_TIMEOUT_S)
    client = await raw_clients(gateway)

    await stalled_upload(client)
    answer = await client.answer()

    assert answer.status == 408
    assert answer.body["error"].startswith(
        "the upload sent no data for 1 s (JETSCRIBE_UPLOAD_IDLE_TIMEOUT_S) and was stopped"
    )
    assert answer.headers["connection"] == "close"
    assert await object_names(topology) == []
    assert await audio_chunks(js) == 0


async def test_slow_upload_that_keeps_sending_is_not_cut_off(
    start_gateway: StartGateway, raw_clients: RawClientFactory
) -> None:
    gateway, _ = await start_gateway(upload_idle_timeout_s=IDLE_TIMEOUT_S)
    client = await raw_clients(gateway)
    pieces = 8
    head, tail = multipart_framing()
    await client.send(upload_headers(len(head) + pieces * 1000 + len(tail)) + head)

    for _ in range(pieces):
        await asyncio.sleep(IDLE_TIMEOUT_S / 2)
        await client.send(b"\x01" * 1000)
    await client.send(tail)
    answer = await client.answer()

    assert answer.status == 202, answer.body


async def test_uploads_beyond_a_callers_cap_get_429_json_while_another_address_uploads(
    start_gateway: StartGateway, raw_clients: RawClientFactory, topology: Topology, js: JetStreamContext
) -> None:
    gateway, http = await start_gateway(max_uploads_per_caller=3)
    held = [await raw_clients(gateway) for _ in range(3)]
    for client in held:
        await stalled_upload(client)
    await uploading(js, 3)

    async with http.post("/jobs", data=audio_form()) as refused:
        body = await refused.json()
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))) as other,
        other.post(f"{gateway.url}/jobs", data=audio_form()) as accepted,
    ):
        assert accepted.status == 202

    assert refused.status == 429
    assert refused.headers["Retry-After"] == "5"
    assert body["error"].startswith("this caller already has 3 uploads in progress on this gateway")
    assert len(await object_names(topology)) == 1


async def test_a_callers_upload_slot_is_free_again_once_an_upload_ends(
    start_gateway: StartGateway, raw_clients: RawClientFactory, js: JetStreamContext
) -> None:
    gateway, http = await start_gateway(max_uploads_per_caller=1)
    client = await raw_clients(gateway)
    await stalled_upload(client)
    await uploading(js, 1)
    async with http.post("/jobs", data=audio_form()) as refused:
        assert refused.status == 429

    client.writer.close()
    for _ in range(100):
        async with http.post("/jobs", data=audio_form()) as response:
            if response.status == 202:
                break
        await asyncio.sleep(0.05)
    assert response.status == 202


async def test_with_keys_the_upload_cap_counts_per_key(
    start_gateway: StartGateway, raw_clients: RawClientFactory, js: JetStreamContext
) -> None:
    gateway, http = await start_gateway(api_keys=KEYS, max_uploads_per_caller=2)
    for _ in range(2):
        await stalled_upload(await raw_clients(gateway), key=KEYS[0])
    await uploading(js, 2)

    async with http.post("/jobs", data=audio_form(), headers={"Authorization": f"Bearer {KEYS[0]}"}) as first:
        assert first.status == 429
    async with http.post("/jobs", data=audio_form(), headers={"Authorization": f"Bearer {KEYS[1]}"}) as second:
        assert second.status == 202
