"""Optional API keys: `Authorization: Bearer <key>` on every route except the open ones.

With no keys configured (`JETSCRIBE_API_KEYS` empty) the API is open. With keys, a request without
a bearer token or with an unknown one gets 401 and `WWW-Authenticate: Bearer` (RFC 6750). Open
routes, so orchestrators, scrapers and people reading the docs need no key: `/livez`, `/readyz`,
`/health`, `/metrics`, `/docs` (with its assets), `/openapi.json`, and the web page `/` (with its assets
under `/app/`: the page asks for the key itself).

Tokens are compared as SHA-256 digests with `hmac.compare_digest`, against every configured key,
so neither a key's length nor its position in the list shows in the response time.

The same check answers `Expect: 100-continue` (`refusal`, called by the upload's expect handler, which
aiohttp runs before any middleware): a client without a valid key is told 401 before it sends a byte
of its upload.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

from aiohttp import web

from gateway import keys
from gateway.errors import error_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

OPEN_PATHS: Final = frozenset({"/livez", "/readyz", "/health", "/metrics", "/docs", "/openapi.json", "/"})
OPEN_PREFIXES: Final = ("/docs/", "/app/")
REALM: Final = "jetscribe"


def is_open(path: str) -> bool:
    """Whether `path` is served without a key."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def key_digests(api_keys: Iterable[str]) -> tuple[bytes, ...]:
    return tuple(hashlib.sha256(k.encode()).digest() for k in api_keys)


def token_is_known(token: str, digests: tuple[bytes, ...]) -> bool:
    """Constant-time membership: every digest is compared, whatever matches first."""
    presented = hashlib.sha256(token.encode()).digest()
    known = False
    for digest in digests:
        known |= hmac.compare_digest(presented, digest)
    return known


def _refusal(message: str, challenge: str) -> web.Response:
    return error_response(401, message, {"WWW-Authenticate": challenge})


def _bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def refusal(request: web.Request) -> web.Response | None:
    """The 401 answer for a request to a guarded route without one of the configured API keys, else None."""
    api_keys = request.app[keys.SETTINGS].api_keys
    if not api_keys or is_open(request.path):
        return None
    token = _bearer_token(request)
    if token is None:
        return _refusal(
            f"{request.method} {request.path} needs an API key: send `Authorization: Bearer <API key>`",
            f'Bearer realm="{REALM}"',
        )
    if not token_is_known(token, key_digests(api_keys)):
        return _refusal(
            "the API key is not valid for this service: check the key, or ask its operator for one",
            f'Bearer realm="{REALM}", error="invalid_token"',
        )
    return None


def caller_scope(request: web.Request) -> str:
    """Whose request this is, for what callers must not share (idempotency keys): the SHA-256 of the API key
    presented, or "anonymous" when the API is open. The one place a caller's identity is derived."""
    token = _bearer_token(request)
    if not request.app[keys.SETTINGS].api_keys or token is None:
        return "anonymous"
    return "key:" + hashlib.sha256(token.encode()).hexdigest()


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a request to a guarded route unless it carries one of the configured API keys."""
    return refusal(request) or await handler(request)
