"""Standard Webhooks signatures, checked the way docs/webhooks.md tells receivers to check them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from multidict import CIMultiDictProxy
from nats.js import JetStreamContext
from standardwebhooks import Webhook

from gateway.webhooks import WebhookDelivery, signature, signing_key
from jetscribe.config import Settings
from jetscribe.errors import ConfigError
from jetscribe.jobstore import JobStore
from tests.webhooks.conftest import ReceiverFactory, Request, finished_job

WHSEC = "whsec_" + base64.b64encode(b"sixteen byte key, or any length").decode()
TOLERANCE_S = 300


def verify(secret: str, headers: CIMultiDictProxy[str], body: bytes) -> bool:
    """The receiver's recipe from docs/webhooks.md, written from the documentation alone."""
    key = base64.b64decode(secret[len("whsec_") :]) if secret.startswith("whsec_") else secret.encode()
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > TOLERANCE_S:
        return False
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.digest(key, signed, "sha256"))
    candidates = [s.split(",", 1) for s in headers["webhook-signature"].split(" ")]
    return any(v == "v1" and hmac.compare_digest(sig.encode(), expected) for v, sig in candidates)


async def delivered_with(
    secret: str | None, settings: Settings, js: JetStreamContext, job_store: JobStore, receiver_factory: ReceiverFactory
) -> Request:
    receiver = await receiver_factory()
    async with WebhookDelivery(msgspec.structs.replace(settings, webhook_secret=secret), js, job_store):
        await finished_job(job_store, js, receiver.url)
        [request] = await receiver.wait_for(1)
    return request


async def test_whsec_secret_signature_verifies_with_the_documented_recipe(
    settings: Settings, js: JetStreamContext, job_store: JobStore, receiver_factory: ReceiverFactory
) -> None:
    request = await delivered_with(WHSEC, settings, js, job_store, receiver_factory)

    assert verify(WHSEC, request.headers, request.body)


async def test_plain_string_secret_signature_verifies_with_the_documented_recipe(
    settings: Settings, js: JetStreamContext, job_store: JobStore, receiver_factory: ReceiverFactory
) -> None:
    request = await delivered_with("correct horse battery staple", settings, js, job_store, receiver_factory)

    assert verify("correct horse battery staple", request.headers, request.body)


def documented_verify() -> Callable[[str, CIMultiDictProxy[str], bytes], bool]:
    """The standard-library `verify` exactly as docs/webhooks.md prints it."""
    doc = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
    source = re.search(r"```python\n(import base64.*?)```", doc, re.DOTALL)
    assert source is not None, "docs/webhooks.md lost its standard-library verification example"
    namespace: dict[str, object] = {}
    exec(source.group(1), namespace)
    return namespace["verify"]  # type: ignore[return-value]


async def test_the_example_printed_in_the_docs_verifies_the_signature(
    settings: Settings, js: JetStreamContext, job_store: JobStore, receiver_factory: ReceiverFactory
) -> None:
    request = await delivered_with(WHSEC, settings, js, job_store, receiver_factory)
    verify_as_documented = documented_verify()

    assert verify_as_documented(WHSEC, request.headers, request.body)
    assert not verify_as_documented(WHSEC, request.headers, request.body + b" ")


async def test_standardwebhooks_reference_library_accepts_the_signature(
    settings: Settings, js: JetStreamContext, job_store: JobStore, receiver_factory: ReceiverFactory
) -> None:
    request = await delivered_with(WHSEC, settings, js, job_store, receiver_factory)

    payload = Webhook(WHSEC).verify(request.body, dict(request.headers))

    assert payload["status"] == "done"


async def test_standardwebhooks_reference_library_accepts_a_plain_secret_as_bytes(
    settings: Settings, js: JetStreamContext, job_store: JobStore, receiver_factory: ReceiverFactory
) -> None:
    request = await delivered_with("correct horse battery staple", settings, js, job_store, receiver_factory)

    Webhook(b"correct horse battery staple").verify(request.body, dict(request.headers))


def test_unpadded_whsec_secret_keys_like_the_padded_one() -> None:
    assert signing_key(WHSEC.rstrip("=")) == signing_key(WHSEC) == base64.b64decode(WHSEC.removeprefix("whsec_"))


async def test_signature_does_not_verify_for_another_body_or_secret(
    settings: Settings, js: JetStreamContext, job_store: JobStore, receiver_factory: ReceiverFactory
) -> None:
    request = await delivered_with(WHSEC, settings, js, job_store, receiver_factory)

    assert not verify(WHSEC, request.headers, request.body.replace(b'"done"', b'"failed"'))
    assert not verify("whsec_" + base64.b64encode(b"another key").decode(), request.headers, request.body)


async def test_webhook_id_names_the_job_and_event(
    settings: Settings, js: JetStreamContext, job_store: JobStore, receiver_factory: ReceiverFactory
) -> None:
    request = await delivered_with(WHSEC, settings, js, job_store, receiver_factory)

    job_id = msgspec.json.decode(request.body)["id"]
    assert request.headers["webhook-id"] == f"{job_id}:completed"


async def test_without_a_secret_requests_are_unsigned(
    settings: Settings, js: JetStreamContext, job_store: JobStore, receiver_factory: ReceiverFactory
) -> None:
    request = await delivered_with(None, settings, js, job_store, receiver_factory)

    assert "webhook-signature" not in request.headers
    assert request.headers["webhook-id"] and request.headers["webhook-timestamp"].isdigit()


async def test_whsec_secret_that_is_not_base64_is_refused_at_start(
    settings: Settings, js: JetStreamContext, job_store: JobStore
) -> None:
    broken = msgspec.structs.replace(settings, webhook_secret="whsec_not*base64!")

    with pytest.raises(ConfigError, match="JETSCRIBE_WEBHOOK_SECRET starts with 'whsec_'"):
        WebhookDelivery(broken, js, job_store)


def test_signer_agrees_with_an_independent_hmac_over_id_timestamp_and_body() -> None:
    body = b'{"id":"job1"}'
    key = base64.b64decode(WHSEC.removeprefix("whsec_"))
    digest = hmac.new(key, b"job1:completed.1700000000." + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()

    assert signature(signing_key(WHSEC), "job1:completed", 1700000000, body) == expected
