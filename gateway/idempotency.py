"""`Idempotency-Key` on `POST /jobs`, done the way payment APIs do it.

- A key belongs to its caller: the record lives under SHA-256(caller scope, key), the scope being
  `auth.caller_scope` (the digest of the API key presented; "anonymous" when keys are off). Two
  callers using the same key never meet.
- The record (`IdempotencyRecord` in `jetscribe_idempotency`) holds the first request's
  fingerprint (its fields and the SHA-256 of its audio) and its state. A replay with the same
  fingerprint gets the same job (`Idempotent-Replayed: true`); with another one, 422; while the
  first request is still in flight, 409 — never a job id that might not come to exist.
- The in-flight reservation is a lease of `LEASE_S`, renewed while the upload streams, so a gateway
  that dies mid-upload does not block the key: after the lease another request takes it over.
- Keys expire `idempotency_window_s` after their last write (the bucket's TTL).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec
from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from gateway.errors import StateConflictError, UnavailableError
from schemas import encode
from schemas.codec import decode_idempotency_record
from schemas.state import IdempotencyRecord

log = logging.getLogger(__name__)

LEASE_S: Final = 60.0
RENEW_S: Final = 15.0
RESERVE_ATTEMPTS: Final = 3


def record_key(scope: str, key: str) -> str:
    """The KV key of `key` sent by the caller `scope` (KV keys allow a narrow alphabet: a hex digest)."""
    return hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest()


def fingerprint(request: Mapping[str, object]) -> str:
    """SHA-256 (hex) of what a submission asks for: its fields as read (JSON-encodable values; the audio as its
    digest or its URL), keys sorted so that the order fields arrived in does not matter."""
    return hashlib.sha256(msgspec.json.encode(dict(sorted(request.items())))).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class Reservation:
    """This request's hold on a key: renew it while the upload lasts, then `complete` or `release` it."""

    def __init__(self, bucket: KeyValue, kv_key: str, revision: int, created_at: datetime) -> None:
        self._bucket = bucket
        self._kv_key = kv_key
        self._revision = revision
        self._created_at = created_at

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            record = IdempotencyRecord(
                state="in_flight", created_at=self._created_at, lease_until=_now() + timedelta(seconds=LEASE_S)
            )
            try:
                self._revision = await self._bucket.update(self._kv_key, encode(record), last=self._revision)
            except KeyWrongLastSequenceError:
                log.warning("idempotency key %s was taken over while its upload ran", self._kv_key)
                return
            except (NatsError, TimeoutError) as exc:
                # The submission itself goes on; the lease is renewed on the next round if NATS is back.
                log.warning("idempotency key %s: lease not renewed: %r", self._kv_key, exc)

    @contextlib.asynccontextmanager
    async def renewing(self) -> AsyncIterator[None]:
        """Keep the lease alive for the block."""
        task = asyncio.create_task(self._renew_forever())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def complete(self, *, request_fingerprint: str, job_id: str) -> None:
        record = IdempotencyRecord(
            state="done", fingerprint=request_fingerprint, job_id=job_id, created_at=self._created_at
        )
        await self._bucket.update(self._kv_key, encode(record), last=self._revision)

    async def release(self) -> None:
        """Free the key after a refused submission, so the client can retry it (only if still ours)."""
        try:
            await self._bucket.delete(self._kv_key, last=self._revision)
        except Exception:
            log.exception("could not release idempotency key %s", self._kv_key)


class IdempotencyKeys:
    """The `jetscribe_idempotency` bucket."""

    def __init__(self, bucket: KeyValue) -> None:
        self._bucket = bucket

    async def begin(self, kv_key: str) -> Reservation | IdempotencyRecord:
        """Reserve the key for this request, or return the finished record of an earlier one.

        Raises StateConflictError (409) while another request holds it.
        """
        for _ in range(RESERVE_ATTEMPTS):
            now = _now()
            fresh = IdempotencyRecord(state="in_flight", created_at=now, lease_until=now + timedelta(seconds=LEASE_S))
            try:
                revision = await self._bucket.create(kv_key, encode(fresh))
                return Reservation(self._bucket, kv_key, revision, now)
            except KeyWrongLastSequenceError:
                pass
            try:
                entry = await self._bucket.get(kv_key)
            except KeyNotFoundError:
                continue  # released by a refused submission in between: reserve it again
            record = decode_idempotency_record(entry.value or b"")
            if record.state == "done":
                return record
            if record.lease_until is not None and record.lease_until > now:
                raise StateConflictError(
                    "a request with this Idempotency-Key is still in progress: retry once it has finished "
                    "(the same request then gets its job; a different one is refused)"
                )
            try:
                revision = await self._bucket.update(kv_key, encode(fresh), last=entry.revision)
                return Reservation(self._bucket, kv_key, revision, now)
            except KeyWrongLastSequenceError:
                continue  # another request took the abandoned key over first
        raise UnavailableError("the Idempotency-Key is being reserved and released concurrently; retry the request")
