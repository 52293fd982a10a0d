"""Optional API keys: bearer tokens guard the API; health, metrics and docs stay open."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from gateway.auth import is_open
from gateway.tenants import Tenancy
from jetscribe.config import Settings
from jetscribe.topology import Topology
from tests.gateway.conftest import StartGateway, audio_form, object_names

KEYS = ("first-key-0123456789", "second-key-9876543210")


@pytest.fixture
async def guarded(start_gateway: StartGateway) -> aiohttp.ClientSession:
    _, session = await start_gateway(api_keys=KEYS)
    return session


async def test_without_configured_keys_the_api_is_open(http: aiohttp.ClientSession) -> None:
    async with http.get("/jobs") as response:
        assert response.status == 200


async def test_request_without_a_key_is_401_with_a_bearer_challenge(guarded: aiohttp.ClientSession) -> None:
    async with guarded.get("/jobs") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="jetscribe"'
        assert "Authorization: Bearer" in (await response.json())["error"]


async def test_unknown_key_is_401_naming_an_invalid_token(guarded: aiohttp.ClientSession) -> None:
    async with guarded.get("/jobs", headers={"Authorization": "Bearer first-key-0123456780"}) as response:
        assert response.status == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        assert "not valid" in (await response.json())["error"]


@pytest.mark.parametrize("header", ["Basic Zmlyc3Qta2V5", "Bearer", "Bearer ", "first-key-0123456789"])
async def test_malformed_authorization_is_401(guarded: aiohttp.ClientSession, header: str) -> None:
    async with guarded.get("/jobs", headers={"Authorization": header}) as response:
        assert response.status == 401


@pytest.mark.parametrize("key", KEYS)
async def test_every_configured_key_is_accepted(guarded: aiohttp.ClientSession, key: str) -> None:
    async with guarded.get("/jobs", headers={"Authorization": f"Bearer {key}"}) as response:
        assert response.status == 200


async def test_each_jobs_route_is_guarded(guarded: aiohttp.ClientSession) -> None:
    for method, path in [
        ("GET", "/jobs/abc"),
        ("DELETE", "/jobs/abc"),
        ("GET", "/jobs/abc/transcript"),
        ("GET", "/jobs/abc/stream"),
        ("GET", "/no/such/route"),
    ]:
        async with guarded.request(method, path) as response:
            assert response.status == 401, (method, path)


async def test_upload_without_a_key_is_refused_and_stores_nothing(
    guarded: aiohttp.ClientSession, topology: Topology
) -> None:
    async with guarded.post("/jobs", data=audio_form()) as response:
        assert response.status == 401
    assert await object_names(topology) == []


async def test_health_metrics_and_docs_stay_open(guarded: aiohttp.ClientSession) -> None:
    for path in ["/livez", "/readyz", "/health", "/metrics", "/openapi.json", "/docs", "/docs/assets/swagger-ui.css"]:
        async with guarded.get(path) as response:
            assert response.status != 401, path
            assert response.status < 500 or path == "/health", path


def test_open_paths_are_exact_not_prefixes() -> None:
    assert is_open("/docs/assets/x.js")
    assert not is_open("/livez/../jobs")
    assert not is_open("/healthz")
    assert not is_open("/jobs")


def test_token_matching_is_exact() -> None:
    tenancy = Tenancy.from_settings(Settings(api_keys=KEYS))
    assert tenancy.caller_of(KEYS[1]) is not None
    assert tenancy.caller_of(KEYS[1][:-1]) is None
    assert tenancy.caller_of(KEYS[1] + "x") is None
    assert tenancy.caller_of("") is None


async def test_unauthenticated_upload_asking_to_continue_gets_401_before_sending_its_body(
    start_gateway: StartGateway,
) -> None:
    server, _ = await start_gateway(api_keys=KEYS)
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"POST /jobs HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 500000\r\nExpect: 100-continue\r\n\r\n"
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    finally:
        writer.close()
        await writer.wait_closed()

    assert head.startswith(b"HTTP/1.1 401"), head
    assert b'WWW-Authenticate: Bearer realm="jetscribe"' in head
