"""The web page at `/`: an HTML file, a stylesheet and three script modules, shipped in the package.

No CDN and no build step: the files in `gateway/static/app/` are what the browser runs, read once when
the app is built. The page and its assets are open routes (like `/docs`); the page asks for the API
key when the API answers 401 and keeps it in the browser's local storage. Its Content-Security-Policy
lets it load nothing but this gateway's own files and talk to nothing but this gateway; audio plays
from `blob:` URLs of files still in the browser.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

from aiohttp import web

from gateway.errors import ResourceNotFoundError

PAGE_DIR: Final = resources.files("gateway") / "static" / "app"
CONTENT_TYPES: Final = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
PAGE: Final = web.AppKey("web_page", dict[str, tuple[bytes, str]])


def _files() -> dict[str, tuple[bytes, str]]:
    """Every file of the page by name, with its content type."""
    found = {}
    for entry in PAGE_DIR.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in CONTENT_TYPES:
            found[entry.name] = (entry.read_bytes(), CONTENT_TYPES[suffix])
    return found


def _response(request: web.Request, name: str) -> web.Response:
    found = request.app[PAGE].get(name)
    if found is None:
        raise ResourceNotFoundError(f"no such resource: GET {request.path} (the page's files are under /app/)")
    body, content_type = found
    return web.Response(body=body, content_type=content_type, charset="utf-8", headers=HEADERS)


async def page(request: web.Request) -> web.Response:
    """`GET /`: the page."""
    return _response(request, "index.html")


async def asset(request: web.Request) -> web.Response:
    """`GET /app/{name}`: one of the page's files."""
    return _response(request, request.match_info["name"])


def add_routes(app: web.Application) -> None:
    """`/` and its files under `/app/`."""
    app[PAGE] = _files()
    app.router.add_get("/", page)
    app.router.add_get("/app/{name}", asset)
