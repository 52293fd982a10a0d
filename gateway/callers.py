"""Who is calling: the identity that per-caller limits are counted against.

With API keys configured, a caller is the key it presented (by SHA-256 digest, so no key is held
in plain text): every holder of one key is one caller. With keys off, a caller is the client's
address as the socket sees it; behind a reverse proxy that is the proxy, so all clients share one
count (raise the per-caller limits there, or turn keys on). The auth middleware has already
refused a request with a missing or unknown key when this runs.
"""

from __future__ import annotations

import hashlib

from aiohttp import web

from gateway import keys


def limit_key(request: web.Request) -> str:
    """`key:<first 16 hex digits of the key's SHA-256>`, or `address:<client address>`."""
    if request.app[keys.TENANCY].keys_required:
        _, _, token = request.headers.get("Authorization", "").partition(" ")
        return "key:" + hashlib.sha256(token.strip().encode()).hexdigest()[:16]
    return f"address:{request.remote or 'unknown'}"
