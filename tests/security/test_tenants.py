"""Tenants against each other on every route: a real gateway on a real nats-server (and a real worker where a job
must finish), with the keys of two tenants and an admin from a tenants file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from nats.js import JetStreamContext

from gateway.tenants import Tenancy
from jetscribe.config import Settings
from jetscribe.errors import ConfigError
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from schemas import JobMessage, JobRecord, encode, names
from tests.faults.conftest import wait_until_terminal
from tests.gateway.conftest import AUDIO, StartGateway, audio_form, bearer, read_events, tenants_file
from tests.gateway.test_job_list import eventually

ACME = "acme-key-0123456789abcdef"
GLOBEX = "globex-key-0123456789abcdef"
OPS = "ops-key-0123456789abcdef"
TENANTS: dict[str, dict[str, Any]] = {
    "acme": {"keys": [ACME]},
    "globex": {"keys": [GLOBEX]},
    "ops": {"keys": [OPS], "admin": True},
}
HOOK = "http://127.0.0.1:9/hooks/jetscribe?token=acme-webhook-token"


@pytest.fixture
async def http(start_gateway: StartGateway, tmp_path: Path) -> aiohttp.ClientSession:
    _, session = await start_gateway(tenants_file=tenants_file(tmp_path, TENANTS))
    return session


async def submit(http: aiohttp.ClientSession, key: str, **fields: str) -> str:
    async with http.post("/jobs", data=audio_form(**fields), headers=bearer(key)) as response:
        assert response.status == 202, await response.text()
        return str((await response.json())["job_id"])


async def listed(http: aiohttp.ClientSession, key: str, query: str = "") -> list[str]:
    async with http.get(f"/jobs?limit=500{query}", headers=bearer(key)) as response:
        assert response.status == 200, await response.text()
        return [job["id"] for job in (await response.json())["jobs"]]


async def answer(http: aiohttp.ClientSession, method: str, path: str, key: str) -> tuple[int, str]:
    async with http.request(method, path, headers=bearer(key)) as response:
        return response.status, await response.text()


async def test_another_tenants_job_is_404_on_every_route_like_a_job_that_does_not_exist(
    http: aiohttp.ClientSession, job_store: JobStore
) -> None:
    job_id = await submit(http, ACME)
    for method, route in [("GET", ""), ("GET", "/transcript"), ("GET", "/stream"), ("DELETE", "")]:
        theirs = await answer(http, method, f"/jobs/{job_id}{route}", GLOBEX)
        unknown = await answer(http, method, f"/jobs/no-such-job{route}", GLOBEX)
        assert theirs[0] == unknown[0] == 404, (method, route)
        assert (
            theirs[1].replace(job_id, "ID").split('"request_id"')[0]
            == unknown[1].replace("no-such-job", "ID").split('"request_id"')[0]
        )
    found = await job_store.get(job_id)
    assert found is not None and found.record.status == "queued"


async def test_a_tenant_reads_and_cancels_its_own_job(http: aiohttp.ClientSession) -> None:
    job_id = await submit(http, ACME)

    assert (await answer(http, "GET", f"/jobs/{job_id}", ACME))[0] == 200
    assert (await answer(http, "DELETE", f"/jobs/{job_id}", ACME))[0] == 204


async def test_each_tenant_lists_only_its_own_jobs(http: aiohttp.ClientSession) -> None:
    acme = {await submit(http, ACME), await submit(http, ACME)}
    globex = {await submit(http, GLOBEX)}

    assert set(await listed(http, ACME)) == acme
    assert set(await listed(http, GLOBEX)) == globex
    assert set(await listed(http, ACME, "&status=queued")) == acme
    assert set(await listed(http, GLOBEX, "&status=queued")) == globex


async def test_a_tenant_asking_for_another_tenants_list_is_403(http: aiohttp.ClientSession) -> None:
    status, body = await answer(http, "GET", "/jobs?tenant=acme", GLOBEX)

    assert status == 403
    assert "only an admin key" in body


async def test_an_admin_lists_every_tenants_jobs_or_one_tenants(http: aiohttp.ClientSession) -> None:
    acme = await submit(http, ACME)
    globex = await submit(http, GLOBEX)
    own = await submit(http, OPS)

    assert set(await listed(http, OPS)) == {acme, globex, own}
    assert await listed(http, OPS, "&tenant=globex") == [globex]
    assert set(await listed(http, OPS, "&status=queued")) == {acme, globex, own}
    assert (await answer(http, "GET", f"/jobs/{acme}", OPS))[0] == 200
    assert (await answer(http, "DELETE", f"/jobs/{globex}", OPS))[0] == 204


async def test_a_webhook_url_is_shown_only_to_its_tenant(http: aiohttp.ClientSession) -> None:
    job_id = await submit(http, ACME, webhook_url=HOOK)

    async with http.get(f"/jobs/{job_id}", headers=bearer(ACME)) as response:
        assert (await response.json())["webhook"]["url"] == HOOK
    for view in [f"/jobs/{job_id}", "/jobs"]:
        async with http.get(view, headers=bearer(OPS)) as response:
            body = await response.text()
            assert response.status == 200
            assert "acme-webhook-token" not in body
            assert '"tenant":"acme"' in body


async def test_a_job_records_its_tenant_and_the_message_names_it(
    http: aiohttp.ClientSession, job_store: JobStore, js: JetStreamContext
) -> None:
    job_id = await submit(http, GLOBEX)

    found = await job_store.get(job_id)
    assert found is not None and found.record.tenant == "globex" and found.record.model is not None
    message = await js.get_last_msg(names.JOBS_STREAM, names.model_jobs_subject(found.record.model, "globex"))
    assert b'"tenant":"globex"' in (message.data or b"")
    async with http.get(f"/jobs/{job_id}", headers=bearer(GLOBEX)) as response:
        assert (await response.json())["tenant"] == "globex"


@pytest.mark.usefixtures("worker")
@pytest.mark.timeout(300)
async def test_transcript_and_event_stream_of_a_finished_job_only_for_its_tenant(
    http: aiohttp.ClientSession, job_store: JobStore
) -> None:
    job_id = await submit(http, ACME)
    await wait_until_terminal(job_store, [job_id], within_s=240)

    assert (await answer(http, "GET", f"/jobs/{job_id}/transcript", ACME))[0] == 200
    assert (await answer(http, "GET", f"/jobs/{job_id}/transcript", GLOBEX))[0] == 404
    async with http.get(f"/jobs/{job_id}/stream", headers=bearer(ACME)) as response:
        events, _ = await read_events(response)
    assert [event.event for event in events] == ["done"]
    assert events[0].data["job"]["tenant"] == "acme"
    assert (await answer(http, "GET", f"/jobs/{job_id}/stream", GLOBEX))[0] == 404


@pytest.mark.usefixtures("worker")
@pytest.mark.timeout(300)
async def test_a_job_published_straight_to_nats_belongs_to_the_tenant_it_names(
    http: aiohttp.ClientSession, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    await topology.audio.put("named", (AUDIO / "en1.ogg").read_bytes())
    await topology.audio.put("unnamed", (AUDIO / "en1.ogg").read_bytes())
    for message in [
        JobMessage(job_id="named", audio_object="named", language="en", tenant="globex"),
        JobMessage(job_id="unnamed", audio_object="unnamed", language="en"),
    ]:
        await js.publish(names.JOBS_SUBJECT, encode(message), headers={names.MSG_ID_HEADER: message.job_id})
    ended = await wait_until_terminal(job_store, ["named", "unnamed"], within_s=240)

    assert ended["named"].tenant == "globex"
    assert ended["unnamed"].tenant == names.DEFAULT_TENANT

    async def listed_for_its_tenant() -> None:
        assert await listed(http, GLOBEX) == ["named"]
        assert await listed(http, ACME) == []
        assert await listed(http, OPS, "&tenant=default") == ["unnamed"]

    await eventually(listed_for_its_tenant)


async def test_a_tenant_past_its_queued_limit_gets_429_and_others_still_submit(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    limited = {**TENANTS, "acme": {"keys": [ACME], "max_queued_jobs": 2}}
    _, http = await start_gateway(tenants_file=tenants_file(tmp_path, limited), max_queued_jobs_per_tenant=50)
    await submit(http, ACME)
    await submit(http, ACME)

    async with http.post("/jobs", data=audio_form(), headers=bearer(ACME)) as response:
        assert response.status == 429
        assert int(response.headers["Retry-After"]) > 0
        assert "tenant 'acme' already has 2 queued jobs, its limit of 2" in (await response.json())["error"]
    await submit(http, GLOBEX)


async def test_the_per_tenant_setting_limits_every_tenant_without_its_own(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    _, http = await start_gateway(tenants_file=tenants_file(tmp_path, TENANTS), max_queued_jobs_per_tenant=1)
    await submit(http, GLOBEX)

    async with http.post("/jobs", data=audio_form(), headers=bearer(GLOBEX)) as response:
        assert response.status == 429
    await submit(http, ACME)


async def test_metrics_show_each_tenants_queued_jobs(http: aiohttp.ClientSession) -> None:
    for key in (ACME, ACME, GLOBEX):
        await submit(http, key)

    async with http.get("/metrics") as response:
        text = await response.text()
    assert 'jetscribe_tenant_jobs{status="queued",tenant="acme"} 2.0' in text
    assert 'jetscribe_tenant_jobs{status="queued",tenant="globex"} 1.0' in text


@pytest.mark.usefixtures("worker")
@pytest.mark.timeout(300)
async def test_metrics_count_each_tenants_transcribed_audio_seconds(
    http: aiohttp.ClientSession, job_store: JobStore
) -> None:
    job_id = await submit(http, ACME)
    ended = await wait_until_terminal(job_store, [job_id], within_s=240)
    seconds = ended[job_id].duration_secs
    assert ended[job_id].status == "done" and seconds

    async def counted() -> None:
        async with http.get("/metrics") as response:
            text = await response.text()
        assert f'jetscribe_tenant_audio_seconds_total{{tenant="acme"}} {float(seconds)}' in text
        assert 'tenant_audio_seconds_total{tenant="globex"}' not in text

    await eventually(counted)


async def test_with_keys_off_every_job_is_seen_as_before(start_gateway: StartGateway, job_store: JobStore) -> None:
    _, http = await start_gateway()
    now = datetime.now(UTC)
    theirs = JobMessage(job_id="theirs", audio_url="https://example.com/a.mp3", tenant="globex", webhook_url=HOOK)
    await job_store.create(JobRecord.queued(theirs, created_at=now))
    async with http.post("/jobs", data=audio_form()) as response:
        own = (await response.json())["job_id"]

    found = await job_store.get(own)
    assert found is not None and found.record.tenant == names.DEFAULT_TENANT
    async with http.get(f"/jobs/{own}") as response:
        assert response.status == 200
        assert (await response.json())["tenant"] == names.DEFAULT_TENANT
    async with http.get("/jobs/theirs") as response:
        assert response.status == 200

    async def both_listed() -> None:
        async with http.get("/jobs") as response:
            assert {job["id"] for job in (await response.json())["jobs"]} == {own, "theirs"}

    await eventually(both_listed)


def test_plain_api_keys_belong_to_the_default_tenant(tmp_path: Path) -> None:
    tenancy = Tenancy.from_settings(Settings(api_keys=("plain-key",), tenants_file=tenants_file(tmp_path, TENANTS)))

    assert tenancy.caller_of("plain-key") == tenancy.caller_of("plain-key")
    plain, acme, ops = (tenancy.caller_of(k) for k in ("plain-key", ACME, OPS))
    assert plain is not None and (plain.tenant, plain.admin) == (names.DEFAULT_TENANT, False)
    assert acme is not None and (acme.tenant, acme.admin) == ("acme", False)
    assert ops is not None and (ops.tenant, ops.admin) == ("ops", True)


def test_a_key_listed_for_two_tenants_is_refused_at_start(tmp_path: Path) -> None:
    path = tenants_file(tmp_path, {"a": {"keys": [ACME]}, "b": {"keys": [ACME]}})

    with pytest.raises(ConfigError, match="configured twice"):
        Tenancy.from_settings(Settings(tenants_file=path))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[tenants.acme]\nkey_sha256 = ['abc']\n", "key_sha256"),
        ("[tenants.'bad name']\nkey_sha256 = []\n", "at `key` in `$.tenants`"),
        ("[tenants.acme]\nkeys = ['plain']\n", "keys"),
        ("[tenants.acme\n", "not a valid tenants file"),
    ],
)
def test_a_malformed_tenants_file_is_refused_at_start_naming_the_problem(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(content)

    with pytest.raises(ConfigError, match="JETSCRIBE_TENANTS_FILE") as raised:
        Tenancy.from_settings(Settings(tenants_file=path))
    assert problem in str(raised.value)


def test_a_tenant_without_a_key_is_refused_at_start_naming_it(tmp_path: Path) -> None:
    # A file of such tenants alone would have left every route open to requests without a key.
    path = tmp_path / "tenants.toml"
    path.write_text("[tenants.acme]\nkey_sha256 = []\n")

    with pytest.raises(ConfigError, match=r"tenant 'acme' has no key") as raised:
        Tenancy.from_settings(Settings(tenants_file=path))
    assert "sha256sum" in str(raised.value)


def test_a_missing_tenants_file_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        Tenancy.from_settings(Settings(tenants_file=tmp_path / "absent.toml"))


async def test_a_tenants_file_alone_turns_keys_on(http: aiohttp.ClientSession) -> None:
    async with http.get("/jobs") as response:
        assert response.status == 401
