"""Optional API keys: `Authorization: Bearer <key>` on every route except the open ones.

With no keys configured (neither `JETSCRIBE_API_KEYS` nor `JETSCRIBE_TENANTS_FILE`) the API is open and
every request is the anonymous caller of the tenant `default`. With keys, a request without
a bearer token or with an unknown one gets 401 and `WWW-Authenticate: Bearer` (RFC 6750). Open
routes, so orchestrators, scrapers and people reading the docs need no key: `/livez`, `/readyz`,
`/health`, `/metrics`, `/docs` (with its assets), `/openapi.json`, and the web page `/` (with its assets
under `/app/`: the page asks for the key itself).

Tokens are compared as SHA-256 digests with `hmac.compare_digest`, against every configured key
(`gateway.tenants.Tenancy`), so neither a key's length nor its position in the list shows in the response
time. The caller a key stands for (its tenant, and whether it is an admin) is kept on the request
(`caller`) for the routes that show or change jobs.

The same check answers `Expect: 100-continue` (`refusal`, called by the upload's expect handler, which
aiohttp runs before any middleware): a client without a valid key is told 401 before it sends a byte
of its upload.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from gateway import keys
from gateway.errors import error_response
from gateway.tenants import ANONYMOUS, Caller

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CALLER: Final = web.RequestKey("caller", Caller)

OPEN_PATHS: Final = frozenset({"/livez", "/readyz", "/health", "/metrics", "/docs", "/openapi.json", "/"})
OPEN_PREFIXES: Final = ("/docs/", "/app/")
REALM: Final = "jetscribe"


def is_open(path: str) -> bool:
    """Whether `path` is served without a key."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def _refusal(message: str, challenge: str) -> web.Response:
    return error_response(401, message, {"WWW-Authenticate": challenge})


def _bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def refusal(request: web.Request) -> web.Response | None:
    """The 401 answer for a request to a guarded route without one of the configured API keys, else None.

    A request it lets through carries its caller under `CALLER`.
    """
    tenancy = request.app[keys.TENANCY]
    if not tenancy.keys_required:
        request[CALLER] = ANONYMOUS
        return None
    if is_open(request.path):
        return None
    token = _bearer_token(request)
    if token is None:
        return _refusal(
            f"{request.method} {request.path} needs an API key: send `Authorization: Bearer <API key>`",
            f'Bearer realm="{REALM}"',
        )
    caller = tenancy.caller_of(token)
    if caller is None:
        return _refusal(
            "the API key is not valid for this service: check the key, or ask its operator for one",
            f'Bearer realm="{REALM}", error="invalid_token"',
        )
    request[CALLER] = caller
    return None


def caller_of(request: web.Request) -> Caller:
    """The caller of a request the auth middleware let through to a guarded route."""
    return request[CALLER]


def caller_scope(request: web.Request) -> str:
    """Whose request this is, for what tenants must not share (idempotency keys): `tenant:<name>`, or
    "anonymous" when the API is open. The one place a caller's scope is derived."""
    if not request.app[keys.TENANCY].keys_required:
        return "anonymous"
    return f"tenant:{caller_of(request).tenant}"


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a request to a guarded route unless it carries one of the configured API keys."""
    return refusal(request) or await handler(request)
