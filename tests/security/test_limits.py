"""Limits: bodies on routes that take none, header sizes, slow routes, and the number of event streams."""

from __future__ import annotations

import asyncio

import aiohttp

from gateway.limits import MAX_BODY_BYTES, MAX_FIELD_BYTES, MAX_HEADERS, MAX_LINE_BYTES
from jetscribe.embedded import EmbeddedNats
from tests.gateway.conftest import StartGateway, audio_form
from tests.paused import paused


async def submit(http: aiohttp.ClientSession) -> str:
    async with http.post("/jobs", data=audio_form()) as response:
        assert response.status == 202
        return str((await response.json())["job_id"])


async def test_body_on_a_route_that_takes_none_is_413_json(http: aiohttp.ClientSession) -> None:
    async with http.delete("/jobs/abc", data=b"x" * (MAX_BODY_BYTES + 1)) as response:
        assert response.status == 413
        assert f"no body larger than {MAX_BODY_BYTES} bytes" in (await response.json())["error"]


async def test_overlong_request_line_is_refused_by_the_parser(http: aiohttp.ClientSession) -> None:
    async with http.get("/jobs/" + "a" * (MAX_LINE_BYTES + 10)) as response:
        assert 400 <= response.status < 500


async def test_oversized_header_is_refused_by_the_parser(http: aiohttp.ClientSession) -> None:
    async with http.get("/jobs", headers={"X-Big": "b" * (MAX_FIELD_BYTES + 10)}) as response:
        assert 400 <= response.status < 500


async def test_too_many_headers_are_refused_by_the_parser(http: aiohttp.ClientSession) -> None:
    headers = {f"X-H{i}": "v" for i in range(MAX_HEADERS + 5)}
    async with http.get("/jobs", headers=headers) as response:
        assert 400 <= response.status < 500


async def test_route_outliving_its_time_limit_is_503_with_retry_after(
    start_gateway: StartGateway, nats_server: EmbeddedNats
) -> None:
    _, http = await start_gateway(request_timeout_s=0.5)
    async with paused(nats_server), asyncio.timeout(5), http.get("/jobs/abc") as response:
        body = await response.json()
    assert response.status == 503, body
    assert response.headers["Retry-After"] == "5"
    assert "took longer than 0.5 s" in body["error"]


async def test_event_streams_beyond_the_cap_get_503_with_retry_after(start_gateway: StartGateway) -> None:
    _, http = await start_gateway(max_sse_clients=2)
    job_ids = [await submit(http) for _ in range(3)]
    first = await http.get(f"/jobs/{job_ids[0]}/stream")
    second = await http.get(f"/jobs/{job_ids[1]}/stream")
    try:
        assert first.status == second.status == 200
        async with http.get(f"/jobs/{job_ids[2]}/stream") as refused:
            assert refused.status == 503
            assert refused.headers["Retry-After"] == "5"
            assert "2 event streams" in (await refused.json())["error"]
    finally:
        first.close()
    await asyncio.sleep(1.0)  # the gateway notices the lost client within CLIENT_CHECK_S
    async with http.get(f"/jobs/{job_ids[2]}/stream") as admitted:
        assert admitted.status == 200
    second.close()


async def test_uploads_and_streams_are_not_cut_by_the_request_time_limit(start_gateway: StartGateway) -> None:
    _, http = await start_gateway(request_timeout_s=0.2, sse_heartbeat_s=0.1)
    job_id = await submit(http)
    async with http.get(f"/jobs/{job_id}/stream") as response:
        assert response.status == 200
        read = 0
        async with asyncio.timeout(5):
            while read < 200:
                read += len(await response.content.readany())
                await asyncio.sleep(0.3)
