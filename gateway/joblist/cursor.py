"""The opaque `cursor` of `GET /jobs`: the sequence the next page is read before, and the list it belongs to.

URL-safe base64 of a small JSON object. The status is part of it because a sequence means something
only in the stream of that list: a cursor passed with another `status` is refused, not misread.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

import msgspec

from gateway.errors import BadRequestError
from schemas import JobStatus

VERSION: Final = 1


class ListCursor(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    v: int
    before: int
    status: JobStatus | None = None


_decoder: Final = msgspec.json.Decoder(ListCursor)


def encode_cursor(before: int, status: JobStatus | None) -> str:
    raw = msgspec.json.encode(ListCursor(v=VERSION, before=before, status=status))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: str | None, status: JobStatus | None) -> int | None:
    """The sequence to read before; None without a cursor. Raises BadRequestError for a foreign cursor."""
    if not raw:
        return None
    try:
        cursor = _decoder.decode(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise BadRequestError(f"cursor {raw!r} is not one this API returned; pass `next_cursor` unchanged") from exc
    if cursor.v != VERSION or cursor.before < 1:
        raise BadRequestError(f"cursor {raw!r} is not one this API returned; pass `next_cursor` unchanged")
    if cursor.status != status:
        wanted = f"status={cursor.status}" if cursor.status else "no status filter"
        raise BadRequestError(f"cursor {raw!r} continues a list with {wanted}; pass the same `status` with it")
    return cursor.before
