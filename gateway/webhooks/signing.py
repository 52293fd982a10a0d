"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

Each request carries `webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature`:
`v1,` followed by the base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}` keyed with the secret.
A secret written `whsec_<base64>` (the Standard Webhooks form; padding optional) is keyed with the
decoded bytes; any other string is keyed with its UTF-8 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Final

from jetscribe.config import env_name
from jetscribe.errors import ConfigError

SECRET_PREFIX: Final = "whsec_"
SIGNATURE_VERSION: Final = "v1"


def signing_key(secret: str) -> bytes:
    """The HMAC key for a configured secret; ConfigError if a `whsec_` secret is not valid base64."""
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode()
    encoded = secret.removeprefix(SECRET_PREFIX)
    # Accept unpadded base64 as the reference implementation does, but nothing outside the alphabet.
    unpadded = encoded.rstrip("=")
    try:
        key = base64.b64decode(unpadded + "=" * (-len(unpadded) % 4), validate=True)
    except binascii.Error as exc:
        raise ConfigError(
            f"{env_name('webhook_secret')} starts with {SECRET_PREFIX!r} but the rest ({len(encoded)} characters) "
            f"is not valid base64: {exc}; give `whsec_` + base64 of the key, or a plain string without the prefix"
        ) from exc
    if not key:
        raise ConfigError(f"{env_name('webhook_secret')} is {SECRET_PREFIX!r} with an empty key after the prefix")
    return key


def signature(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one request."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def webhook_headers(key: bytes | None, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers; without a key there is no `webhook-signature`."""
    headers = {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp)}
    if key is not None:
        headers["webhook-signature"] = signature(key, webhook_id, timestamp, body)
    return headers
