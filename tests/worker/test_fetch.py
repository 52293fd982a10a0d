"""Reading a job's audio from the object store: each failure says what went wrong, and is worth another try."""

from __future__ import annotations

import io

import pytest
from nats.js import JetStreamContext

from jetscribe.embedded import EmbeddedNats
from jetscribe.stage.errors import RetryableError
from jetscribe.stage.fetch import fetch_object
from jetscribe.topology import Topology
from tests.paused import paused
from tests.worker.jobs import AUDIO, upload


async def test_an_unanswered_nats_request_is_not_reported_as_the_whole_read_running_out_of_time(
    js: JetStreamContext, topology: Topology, nats_server: EmbeddedNats
) -> None:
    name = await upload(topology, AUDIO / "en1.wav")

    async with paused(nats_server):
        with pytest.raises(RetryableError) as caught:
            await fetch_object(js, name, io.BytesIO(), timeout_s=120)

    assert "NATS did not answer in time" in str(caught.value)
    assert "120 s" not in str(caught.value)


async def test_a_read_outliving_its_time_limit_names_the_limit(
    js: JetStreamContext, topology: Topology, nats_server: EmbeddedNats
) -> None:
    name = await upload(topology, AUDIO / "en1.wav")

    async with paused(nats_server):
        with pytest.raises(RetryableError) as caught:
            await fetch_object(js, name, io.BytesIO(), timeout_s=0.5)

    assert f"reading audio object {name!r} did not finish within 0.5 s" in str(caught.value)
