"""The SSRF guard: non-public targets are refused at submit time and again when connecting."""

from __future__ import annotations

import aiohttp
import msgspec
import pytest
from nats.js import JetStreamContext

from gateway.webhooks import WebhookDelivery
from jetscribe.config import Settings
from jetscribe.errors import UnsafeTargetError
from jetscribe.jobstore import JobStore
from jetscribe.netguard import check_public_url, guarded_connector
from tests.webhooks.conftest import ReceiverFactory, finished, finished_job, webhook_state

HINT = "public targets only (set JETSCRIBE_ALLOW_PRIVATE_TARGETS=true for development)"


async def test_loopback_literal_is_refused_with_a_message_that_says_what_to_fix() -> None:
    with pytest.raises(UnsafeTargetError) as refused:
        await check_public_url("http://127.0.0.1:8080/hook", allow_private=False)

    assert str(refused.value) == f"webhook_url host 127.0.0.1 is a loopback address; {HINT}"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.1.2.3/hook", "a private address"),
        ("http://192.168.1.20/hook", "a private address"),
        ("http://172.16.0.5/hook", "a private address"),
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
        ("http://[fd00:ec2::254]/latest/", "a cloud metadata address"),
        ("http://169.254.10.10/", "a link-local address"),
        ("http://[::1]:8080/hook", "a loopback address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("http://[::ffff:127.0.0.1]/", "a loopback address"),
        ("http://0.0.0.0/", "an unspecified address"),
        ("http://224.0.0.1/", "a multicast address"),
        ("http://100.64.0.1/", "a non-public address"),
    ],
)
async def test_non_public_literals_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeTargetError, match=f"is {reason}; public targets only"):
        await check_public_url(url, allow_private=False)


async def test_hostname_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(UnsafeTargetError, match=r"host localhost resolves to (127\.0\.0\.1|::1), a loopback address"):
        await check_public_url("http://localhost:8080/hook", allow_private=False)


@pytest.mark.parametrize("url", ["https://93.184.215.14/hook", "http://[2606:4700:4700::1111]:8443/hook"])
async def test_public_ip_literals_are_allowed(url: str) -> None:
    await check_public_url(url, allow_private=False)


async def test_private_targets_are_allowed_when_configured() -> None:
    await check_public_url("http://127.0.0.1:8080/hook", allow_private=True)
    await check_public_url("http://localhost/hook", allow_private=True)


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "file:///etc/passwd", "example.com/hook", "http:///hook"])
async def test_non_http_urls_are_refused_even_when_private_targets_are_allowed(url: str) -> None:
    with pytest.raises(UnsafeTargetError, match="is not an absolute http:// or https:// URL"):
        await check_public_url(url, allow_private=True)


async def test_audio_url_field_is_named_in_the_message() -> None:
    with pytest.raises(UnsafeTargetError, match=r"^audio_url host 10\.0\.0\.1 is a private address"):
        await check_public_url("http://10.0.0.1/a.wav", allow_private=False, what="audio_url")


async def test_host_that_cannot_resolve_is_refused() -> None:
    with pytest.raises(UnsafeTargetError, match="does not resolve"):
        await check_public_url(f"http://{'a' * 64}.example/hook", allow_private=False)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_guarded_connector_refuses_to_connect_to_loopback(host: str, receiver_factory: ReceiverFactory) -> None:
    receiver = await receiver_factory()
    url = receiver.url.replace("127.0.0.1", host)

    async with aiohttp.ClientSession(connector=guarded_connector(False, what="audio_url")) as session:
        with pytest.raises(UnsafeTargetError, match=f"^audio_url host {host} "):
            await session.post(url)

    assert receiver.requests == []


async def test_guarded_connector_connects_to_loopback_when_private_targets_are_allowed(
    receiver_factory: ReceiverFactory,
) -> None:
    receiver = await receiver_factory()

    async with aiohttp.ClientSession(connector=guarded_connector(True)) as session:
        async with session.post(receiver.url.replace("127.0.0.1", "localhost")) as response:
            assert response.status == 200

    assert len(receiver.requests) == 1


async def test_delivery_to_a_private_target_is_refused_and_not_retried(
    settings: Settings, receiver_factory: ReceiverFactory, job_store: JobStore, js: JetStreamContext
) -> None:
    receiver = await receiver_factory()
    strict = msgspec.structs.replace(settings, allow_private_targets=False)
    async with WebhookDelivery(strict, js, job_store):
        record = await finished_job(job_store, js, receiver.url)
        state = await webhook_state(job_store, record.id, finished)

    assert receiver.requests == []
    assert (state.attempts, state.exhausted, state.last_status) == (1, True, None)
    assert state.last_error == f"refused: webhook_url host 127.0.0.1 is a loopback address; {HINT}"


async def test_delivery_to_a_non_http_url_is_refused_and_not_retried(
    delivery: WebhookDelivery, job_store: JobStore, js: JetStreamContext
) -> None:
    record = await finished_job(job_store, js, "ftp://files.example.com/hook")

    state = await webhook_state(job_store, record.id, finished)

    assert (state.attempts, state.exhausted) == (1, True)
    assert state.last_error == (
        "refused: webhook_url 'ftp://files.example.com/hook' is not an absolute http:// or https:// URL"
    )
