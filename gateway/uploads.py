"""Streaming an upload into the audio object store while counting its bytes.

nats-py's `ObjectStore.put` reads its source synchronously (`readinto`, on an executor thread for
file objects), so an asynchronous multipart stream cannot feed it without either spooling the
whole upload to a temporary file first (a second full copy on disk, and the client waits for both)
or parking an executor thread per upload on a slow client (which starves the shared thread pool).
Instead this module writes the object itself, in the object store's own layout: 128 KiB chunk
messages on a fresh chunk subject, then the meta message with the SHA-256 digest. At most
`PUBLISH_WINDOW` chunks are unacknowledged at once, so memory stays at about 1 MiB per upload
whatever its size, and reading from the socket overlaps with JetStream's acknowledgements.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from hashlib import sha256
from typing import Final

from nats.js import JetStreamContext, api
from nats.js.kv import MSG_ROLLUP_SUBJECT
from nats.js.object_store import OBJ_DEFAULT_CHUNK_SIZE, OBJ_DIGEST_TEMPLATE
from nats.nuid import NUID

from gateway.errors import PayloadTooLargeError
from schemas import names

CHUNK_BYTES: Final = OBJ_DEFAULT_CHUNK_SIZE
PUBLISH_WINDOW: Final = 8
ACK_TIMEOUT_S: Final = 30.0

_NUID: Final = NUID()

Reader = Callable[[int], Awaitable[bytes]]
"""Reads up to n bytes; b"" at the end (e.g. `BodyPartReader.read_chunk`)."""


def format_bytes(n: int) -> str:
    """`n` bytes in the largest unit that keeps one digit before the point (1024-based)."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


class ObjectUpload:
    """One object being written into an object-store bucket; `commit()` makes it visible, `discard()` drops it."""

    def __init__(self, js: JetStreamContext, bucket: str, name: str, *, max_bytes: int) -> None:
        self._js = js
        self._bucket = bucket
        self._name = name
        self._max_bytes = max_bytes
        self._nuid = _NUID.next().decode()
        self._chunk_subject = names.object_chunk_subject(bucket, self._nuid)
        self._digest = sha256()
        self._pending: deque[asyncio.Future[api.PubAck]] = deque()
        self.size = 0
        self.chunks = 0

    async def write_from(self, read: Reader) -> int:
        """Copy everything `read` yields into the object; returns the byte count.

        Raises PayloadTooLargeError as soon as the count passes `max_bytes` (the caller discards).
        """
        buffer = bytearray()
        while data := await read(CHUNK_BYTES):
            self.size += len(data)
            if self.size > self._max_bytes:
                raise PayloadTooLargeError(
                    f"the audio is larger than this service's upload limit of {format_bytes(self._max_bytes)} "
                    f"({self._max_bytes} bytes; {self.size} bytes received before stopping): "
                    "send a shorter or more compressed file"
                )
            buffer += data
            while len(buffer) >= CHUNK_BYTES:
                await self._publish_chunk(bytes(buffer[:CHUNK_BYTES]))
                del buffer[:CHUNK_BYTES]
        if buffer:
            await self._publish_chunk(bytes(buffer))
        return self.size

    @property
    def sha256_hex(self) -> str:
        """SHA-256 of the bytes written so far."""
        return self._digest.hexdigest()

    async def commit(self, *, description: str | None = None) -> None:
        """Wait for every chunk's acknowledgement, then publish the meta message that makes the object readable."""
        while self._pending:
            await self._wait_oldest()
        info = api.ObjectInfo(
            name=self._name,
            bucket=self._bucket,
            nuid=self._nuid,
            size=self.size,
            chunks=self.chunks,
            mtime=datetime.now(UTC).isoformat(),
            digest=OBJ_DIGEST_TEMPLATE.format(digest=base64.urlsafe_b64encode(self._digest.digest()).decode()),
            description=description,
            options=api.ObjectMetaOptions(max_chunk_size=CHUNK_BYTES),
        )
        meta_subject = names.object_meta_subject(self._bucket, base64.urlsafe_b64encode(self._name.encode()).decode())
        await self._js.publish(
            meta_subject, json.dumps(info.as_dict()).encode(), headers={api.Header.ROLLUP: MSG_ROLLUP_SUBJECT}
        )

    async def discard(self) -> None:
        """Drop every chunk written so far (the meta message was never published, so nothing else exists)."""
        # Chunks still in flight could be stored after the purge: let them land first.
        while self._pending:
            with contextlib.suppress(Exception):  # a chunk that failed to land needs no purge
                await self._wait_oldest()
        if self.chunks:
            await self._js.purge_stream(names.object_stream(self._bucket), subject=self._chunk_subject)

    async def _publish_chunk(self, payload: bytes) -> None:
        if len(self._pending) >= PUBLISH_WINDOW:
            await self._wait_oldest()
        self._digest.update(payload)
        self._pending.append(await self._js.publish_async(self._chunk_subject, payload))
        self.chunks += 1

    async def _wait_oldest(self) -> None:
        future = self._pending.popleft()
        # publish_async's future has no deadline of its own: an ack lost in an outage would wait forever.
        await asyncio.wait_for(future, ACK_TIMEOUT_S)


class AudioDigest:
    """A sink with `ObjectUpload`'s interface that keeps nothing: it counts and hashes the audio of a replayed
    idempotent request, to compare it with the first one's."""

    def __init__(self, *, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._digest = sha256()
        self.size = 0

    @property
    def sha256_hex(self) -> str:
        return self._digest.hexdigest()

    async def write_from(self, read: Reader) -> int:
        while data := await read(CHUNK_BYTES):
            self.size += len(data)
            if self.size > self._max_bytes:
                raise PayloadTooLargeError(
                    f"the audio is larger than this service's upload limit of {format_bytes(self._max_bytes)} "
                    f"({self._max_bytes} bytes): send a shorter or more compressed file"
                )
            self._digest.update(data)
        return self.size

    async def commit(self, *, description: str | None = None) -> None:
        """Nothing to make visible."""

    async def discard(self) -> None:
        """Nothing to drop."""
