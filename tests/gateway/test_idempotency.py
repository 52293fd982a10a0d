"""`Idempotency-Key` as payment APIs do it: scoped to the tenant, bound to the request's fingerprint (fields and
audio), 409 while the first request is in flight, forgotten after its window."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from nats.js import JetStreamContext
from nats.js.errors import NoKeysError

from gateway.main import GatewayServer
from jetscribe.topology import Topology
from schemas import names
from schemas.codec import decode_idempotency_record
from tests.gateway.conftest import AUDIO, StartGateway, audio_form, bearer, tenants_file

KEY = {"Idempotency-Key": "order-2026-11-29-0001"}


async def post(http: aiohttp.ClientSession, form: aiohttp.FormData, headers: dict[str, str]) -> tuple[int, dict]:
    async with http.post("/jobs", data=form, headers=headers) as response:
        return response.status, await response.json()


async def jobs_queued(js: JetStreamContext) -> int:
    return (await js.stream_info(names.JOBS_STREAM)).state.messages


async def test_replay_with_other_audio_is_422_and_makes_no_job(
    http: aiohttp.ClientSession, js: JetStreamContext
) -> None:
    first = await post(http, audio_form(AUDIO / "en1.wav"), KEY)
    replay = await post(http, audio_form(AUDIO / "en2.wav"), KEY)

    assert first[0] == 202
    assert replay[0] == 422
    assert "used for a different request" in replay[1]["error"]
    assert await jobs_queued(js) == 1


async def test_replay_with_other_fields_is_422(http: aiohttp.ClientSession) -> None:
    assert (await post(http, audio_form(language="en"), KEY))[0] == 202
    status, body = await post(http, audio_form(language="de"), KEY)

    assert status == 422 and "different request" in body["error"]


async def test_same_key_from_two_tenants_makes_two_jobs(
    start_gateway: StartGateway, js: JetStreamContext, tmp_path: Path
) -> None:
    tenants = {"alpha": {"keys": ["alpha-key-0123456789"]}, "beta": {"keys": ["beta-key-0123456789"]}}
    _, http = await start_gateway(tenants_file=tenants_file(tmp_path, tenants))
    alpha = await post(http, audio_form(), {**KEY, **bearer("alpha-key-0123456789")})
    beta = await post(http, audio_form(AUDIO / "en2.wav"), {**KEY, **bearer("beta-key-0123456789")})
    alpha_again = await post(http, audio_form(), {**KEY, **bearer("alpha-key-0123456789")})

    assert alpha[0] == beta[0] == alpha_again[0] == 202
    assert alpha[1]["job_id"] != beta[1]["job_id"]
    assert alpha_again[1]["job_id"] == alpha[1]["job_id"]
    assert await jobs_queued(js) == 2
    async with http.get(f"/jobs/{beta[1]['job_id']}", headers=bearer("beta-key-0123456789")) as response:
        assert response.status == 200


async def test_keys_of_one_tenant_share_its_idempotency_keys(start_gateway: StartGateway, js: JetStreamContext) -> None:
    _, http = await start_gateway(api_keys=("old-key-0123456789", "new-key-0123456789"))
    old = await post(http, audio_form(), {**KEY, **bearer("old-key-0123456789")})
    new = await post(http, audio_form(), {**KEY, **bearer("new-key-0123456789")})

    assert old[0] == new[0] == 202
    assert new[1]["job_id"] == old[1]["job_id"]
    assert await jobs_queued(js) == 1


async def in_flight(topology: Topology) -> None:
    """Return once a reservation is recorded in the idempotency bucket."""
    while True:
        try:
            keys = await topology.idempotency.keys()
        except NoKeysError:
            keys = []
        for key in keys:
            entry = await topology.idempotency.get(key)
            if decode_idempotency_record(entry.value or b"").state == "in_flight":
                return
        await asyncio.sleep(0.05)


async def test_replay_while_the_first_is_in_flight_is_409_never_an_id(
    gateway: GatewayServer, http: aiohttp.ClientSession, topology: Topology, js: JetStreamContext
) -> None:
    audio = (AUDIO / "en1.wav").read_bytes()
    body = b'--b\r\nContent-Disposition: form-data; name="audio"; filename="en1.wav"\r\n\r\n' + audio + b"\r\n--b--\r\n"
    host, port = gateway.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            f"POST /jobs HTTP/1.1\r\nHost: test\r\nConnection: close\r\nIdempotency-Key: {KEY['Idempotency-Key']}\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:1000]
        )
        await writer.drain()
        await asyncio.wait_for(in_flight(topology), 30)

        during = await post(http, audio_form(AUDIO / "en1.wav"), KEY)

        writer.write(body[1000:])
        first = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
        await writer.wait_closed()
    after = await post(http, audio_form(AUDIO / "en1.wav"), KEY)

    assert during[0] == 409 and "still in progress" in during[1]["error"]
    assert "job_id" not in during[1]
    assert first.startswith(b"HTTP/1.1 202")
    assert after[0] == 202 and after[1]["job_id"] in first.decode()
    assert await jobs_queued(js) == 1


async def test_key_used_again_after_its_window_makes_a_new_job(
    start_gateway: StartGateway, js: JetStreamContext
) -> None:
    _, http = await start_gateway(idempotency_window_s=1.0)
    first = await post(http, audio_form(AUDIO / "en1.wav"), KEY)
    await asyncio.sleep(3.0)
    later = await post(http, audio_form(AUDIO / "en2.wav"), KEY)

    assert first[0] == later[0] == 202
    assert later[1]["job_id"] != first[1]["job_id"]
    assert await jobs_queued(js) == 2
