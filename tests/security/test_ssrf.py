"""The SSRF guard end to end: IPv6 forms refused at submit, redirects to other schemes ending work at once."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from nats.js import JetStreamContext
from yarl import URL

from gateway.webhooks import WebhookDelivery
from jetscribe.config import Settings
from jetscribe.jobstore import JobStore
from jetscribe.stage.errors import PermanentError
from jetscribe.stage.fetch import AudioDownloader
from jetscribe.topology import Topology
from schemas import JobMessage
from tests.gateway.conftest import StartGateway, audio_form, object_names
from tests.webhooks.conftest import finished, finished_job, webhook_state
from tests.worker.jobs import new_job_id, publish_job, terminal_event
from worker.service import Worker


@dataclass
class Redirector:
    """A loopback server whose `/to?location=X` answers `302 Location: X`, counting what it is asked."""

    url: str = ""
    requests: list[str] = field(default_factory=list)

    def to(self, location: str) -> str:
        return str(URL(f"{self.url}/to").with_query(location=location))


@pytest.fixture
async def redirector() -> AsyncIterator[Redirector]:
    server = Redirector()

    async def redirect(request: web.Request) -> web.Response:
        server.requests.append(request.method)
        return web.Response(status=302, headers={"Location": request.query["location"]})

    app = web.Application()
    app.router.add_route("*", "/to", redirect)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield server
    await runner.cleanup()


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("2002:7f00:1::1", "a 6to4 address of 127.0.0.1, a loopback address"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "a Teredo address of 127.0.0.1, a loopback address"),
        ("64:ff9b::a9fe:a9fe", "a NAT64 address of 169.254.169.254, a cloud metadata address"),
        ("64:ff9b:1::a00:1", "a local-use NAT64 address (RFC 8215)"),
        ("::a00:1", "an IPv4-compatible address (deprecated, RFC 4291)"),
        ("fec0::1", "a site-local address (deprecated, RFC 3879)"),
        ("fd00::1", "a unique-local (private) address"),
        ("100::1", "a discard-only address (RFC 6666)"),
        ("2001:db8::1", "a documentation address (RFC 3849)"),
    ],
)
async def test_webhook_url_with_an_ipv6_form_of_a_non_public_address_is_422_at_submit(
    start_gateway: StartGateway, topology: Topology, address: str, reason: str
) -> None:
    _, http = await start_gateway(allow_private_targets=False)

    async with http.post("/jobs", data=audio_form(webhook_url=f"http://[{address}]:8080/hook")) as response:
        body = await response.json()

    assert response.status == 422
    assert body["error"].startswith(f"webhook_url host {address} is {reason}; public targets only")
    assert await object_names(topology) == []


@pytest.mark.parametrize("location", ["file:///etc/passwd", "gopher://127.0.0.1:70/_stats"])
async def test_webhook_redirected_to_a_non_http_scheme_is_given_up_after_one_attempt(
    settings: Settings, job_store: JobStore, js: JetStreamContext, redirector: Redirector, location: str
) -> None:
    async with WebhookDelivery(settings, js, job_store):
        record = await finished_job(job_store, js, redirector.to(location))
        state = await webhook_state(job_store, record.id, finished)

    assert redirector.requests == ["POST"]
    assert (state.attempts, state.last_status, state.exhausted) == (1, 302, True)
    assert state.last_error == (
        f"refused: the receiver redirected to {location!r}; webhooks go to http:// or https:// URLs only "
        "and redirects are not followed: delivery stopped"
    )


async def test_webhook_redirected_to_another_http_url_is_retried_as_documented(
    settings: Settings, job_store: JobStore, js: JetStreamContext, redirector: Redirector
) -> None:
    async with WebhookDelivery(settings, js, job_store):
        record = await finished_job(job_store, js, redirector.to("https://example.com/moved"))
        state = await webhook_state(job_store, record.id, finished)

    assert state.attempts == len(settings.webhook_retry_schedule_s) + 1
    assert (state.last_status, state.exhausted, state.last_error) == (302, True, "receiver answered HTTP 302")


@pytest.mark.parametrize("location", ["file:///etc/passwd", "gopher://127.0.0.1:70/_stats"])
async def test_audio_download_redirected_to_a_non_http_scheme_is_a_permanent_error(
    redirector: Redirector, location: str
) -> None:
    url = redirector.to(location)
    async with AudioDownloader(max_bytes=1 << 20, timeout_s=5, allow_private=True) as downloader:
        with tempfile.TemporaryFile() as dest, pytest.raises(PermanentError) as refused:
            await downloader.download(url, dest)

    assert str(refused.value) == f"audio URL {url} redirects to {location}, which is not an http(s) URL"


async def test_job_whose_audio_url_redirects_to_a_file_url_fails_at_once(
    worker: Worker, js: JetStreamContext, job_store: JobStore, redirector: Redirector
) -> None:
    url = redirector.to(Path("/etc/passwd").as_uri())
    job_id = new_job_id()
    await publish_job(js, JobMessage(job_id=job_id, audio_url=url))

    event = await terminal_event(js, job_id)

    assert event.type == "failed"
    assert event.job.error == f"audio URL {url} redirects to file:///etc/passwd, which is not an http(s) URL"
    assert (await job_store.require(job_id)).record.attempts == 1
    assert redirector.requests == ["GET"]
