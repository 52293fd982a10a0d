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
        ("http://[::ffff:127.0.0.1]/", "an IPv4-mapped address of 127.0.0.1, a loopback address"),
        ("http://0.0.0.0/", "an unspecified address"),
        ("http://224.0.0.1/", "a multicast address"),
        ("http://100.64.0.1/", r"a shared address \(carrier-grade NAT, RFC 6598\)"),
    ],
)
async def test_non_public_literals_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeTargetError, match=f"is {reason}; public targets only"):
        await check_public_url(url, allow_private=False)


IPV6_FORMS = [
    ("2002:7f00:1::1", "a 6to4 address of 127.0.0.1, a loopback address"),
    ("2002:a00:1::1", "a 6to4 address of 10.0.0.1, a private address"),
    ("2002:a9fe:a9fe::1", "a 6to4 address of 169.254.169.254, a cloud metadata address"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "a Teredo address of 127.0.0.1, a loopback address"),
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", r"a Teredo tunnel address \(of 8\.8\.8\.8\)"),
    ("64:ff9b::7f00:1", "a NAT64 address of 127.0.0.1, a loopback address"),
    ("64:ff9b::c0a8:101", "a NAT64 address of 192.168.1.1, a private address"),
    ("64:ff9b:1::a00:1", r"a local-use NAT64 address \(RFC 8215\)"),
    ("::7f00:1", r"an IPv4-compatible address \(deprecated, RFC 4291\)"),
    ("::ffff:0:7f00:1", r"an IPv4-translated address \(RFC 2765\)"),
    ("fec0::1", r"a site-local address \(deprecated, RFC 3879\)"),
    ("fd12:3456::1", r"a unique-local \(private\) address"),
    ("100::1", r"a discard-only address \(RFC 6666\)"),
    ("2001:db8::1", r"a documentation address \(RFC 3849\)"),
    ("3fff::1", r"a documentation address \(RFC 9637\)"),
    ("2001:2::1", r"a benchmarking address \(RFC 5180\)"),
    ("2001:20::1", r"an IETF protocol-assignment address \(RFC 2928\)"),
    ("5f00::1", "outside the global unicast range 2000::/3"),
    ("ff02::1", "a multicast address"),
]


@pytest.mark.parametrize(("address", "reason"), IPV6_FORMS)
async def test_ipv6_forms_that_reach_or_are_non_public_addresses_are_refused(address: str, reason: str) -> None:
    with pytest.raises(UnsafeTargetError, match=f"^webhook_url host {address} is {reason}; public targets only"):
        await check_public_url(f"http://[{address}]/hook", allow_private=False)


@pytest.mark.parametrize(
    "address",
    [
        "2002:808:808::1",  # 6to4 of 8.8.8.8
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8, as DNS64 synthesizes on an IPv6-only network
        "::ffff:8.8.8.8",
    ],
)
async def test_ipv6_forms_of_a_public_ipv4_address_are_allowed(address: str) -> None:
    await check_public_url(f"http://[{address}]/hook", allow_private=False)


@pytest.mark.parametrize(
    "address", ["2002:7f00:1::1", "64:ff9b::7f00:1", "fec0::1", "2001:0:4136:e378:8000:63bf:80ff:fffe"]
)
async def test_guarded_connector_refuses_ipv6_forms_when_connecting(address: str) -> None:
    async with aiohttp.ClientSession(connector=guarded_connector(False, what="audio_url")) as session:
        with pytest.raises(UnsafeTargetError, match=f"^audio_url host {address} is "):
            await session.get(f"http://[{address}]:9/audio.wav")


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


async def test_delivery_to_a_6to4_address_of_loopback_is_refused_and_not_retried(
    settings: Settings, job_store: JobStore, js: JetStreamContext
) -> None:
    strict = msgspec.structs.replace(settings, allow_private_targets=False)
    async with WebhookDelivery(strict, js, job_store):
        record = await finished_job(job_store, js, "http://[2002:7f00:1::1]:8080/hook")
        state = await webhook_state(job_store, record.id, finished)

    assert (state.attempts, state.exhausted, state.last_status) == (1, True, None)
    assert state.last_error == (
        f"refused: webhook_url host 2002:7f00:1::1 is a 6to4 address of 127.0.0.1, a loopback address; {HINT}"
    )
