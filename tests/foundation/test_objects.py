"""jetscribe.objects.read_object: the fast object-store reader the worker fetches audio with."""

from __future__ import annotations

import asyncio
import io
import os
import threading

import pytest
from nats.js import JetStreamContext
from nats.js.errors import ObjectNotFoundError

from jetscribe.errors import ObjectCorruptError
from jetscribe.objects import read_object
from jetscribe.topology import Topology
from schemas import names


async def test_an_object_of_many_chunks_reads_back_byte_for_byte(topology: Topology, js: JetStreamContext) -> None:
    data = os.urandom(3 * 1024 * 1024 + 12345)
    await topology.audio.put("clip", io.BytesIO(data))
    out = io.BytesIO()

    size = await read_object(js, names.AUDIO_BUCKET, "clip", out)

    assert size == len(data)
    assert out.getvalue() == data


async def test_an_empty_object_reads_as_zero_bytes(topology: Topology, js: JetStreamContext) -> None:
    await topology.audio.put("empty", io.BytesIO(b""))
    out = io.BytesIO()

    assert await read_object(js, names.AUDIO_BUCKET, "empty", out) == 0
    assert out.getvalue() == b""


async def test_a_missing_object_raises_not_found(topology: Topology, js: JetStreamContext) -> None:
    with pytest.raises(ObjectNotFoundError):
        await read_object(js, names.AUDIO_BUCKET, "nowhere", io.BytesIO())


async def test_a_lost_chunk_is_reported_as_corrupt_instead_of_waiting_forever(
    topology: Topology, js: JetStreamContext
) -> None:
    await topology.audio.put("clip", io.BytesIO(os.urandom(512 * 1024)))
    info = await topology.audio.get_info("clip")
    stream = names.object_stream(names.AUDIO_BUCKET)
    chunk = await js.get_last_msg(stream, names.object_chunk_subject(names.AUDIO_BUCKET, info.nuid or ""))
    await js.delete_msg(stream, chunk.seq)

    with pytest.raises(ObjectCorruptError, match="3 of its 4 chunks"):
        await read_object(js, names.AUDIO_BUCKET, "clip", io.BytesIO(), fetch_timeout_s=0.5)


class PipeFile(io.FileIO):
    """The write end of a real pipe, counting the writes in progress (a full pipe blocks its writer)."""

    in_progress = 0
    writing = threading.Event()

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.in_progress += 1
        self.writing.set()
        try:
            return super().write(data)
        finally:
            self.in_progress -= 1


async def test_a_cancelled_read_ends_only_after_its_write_thread_has(topology: Topology, js: JetStreamContext) -> None:
    await topology.audio.put("clip", io.BytesIO(os.urandom(2 * 1024 * 1024)))
    read_fd, write_fd = os.pipe()
    dest = PipeFile(write_fd, "wb")
    writes_at_end: list[int] = []
    reading = asyncio.create_task(read_object(js, names.AUDIO_BUCKET, "clip", dest))
    reading.add_done_callback(lambda _: writes_at_end.append(dest.in_progress))
    assert await asyncio.to_thread(dest.writing.wait, 30)

    reading.cancel()
    await asyncio.sleep(0.5)
    draining = asyncio.create_task(asyncio.to_thread(drain, read_fd))
    with pytest.raises(asyncio.CancelledError):
        await reading
    dest.close()
    await draining
    os.close(read_fd)

    assert writes_at_end == [0], "the read returned while its thread still wrote into the file"


def drain(fd: int) -> None:
    while os.read(fd, 1 << 16):
        pass
