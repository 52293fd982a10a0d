"""The web page's routes: served by the gateway from the package, open like /docs, locked down by its headers."""

from __future__ import annotations

import aiohttp

from gateway.main import GatewayServer
from tests.frontends.conftest import StartGateway


async def get(url: str, **headers: str) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return response.status, await response.text(), dict(response.headers)


async def test_the_page_and_its_assets_come_from_the_gateway(gateway: GatewayServer) -> None:
    status, html, headers = await get(gateway.url + "/")
    assets = [await get(f"{gateway.url}/app/{name}") for name in ("app.js", "api.js", "options.js", "style.css")]

    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert '<script type="module" src="/app/app.js">' in html
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert [a[0] for a in assets] == [200, 200, 200, 200]
    assert all("http://" not in text and "https://" not in text for _, text, _ in assets[:3]), "no CDN, no remote call"


async def test_with_api_keys_the_page_is_open_and_the_api_is_not(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(api_keys=("k",))

    page, _, _ = await get(gateway.url + "/")
    script, _, _ = await get(gateway.url + "/app/app.js")
    jobs, _, _ = await get(gateway.url + "/jobs")
    sneaky, _, _ = await get(gateway.url + "/app/../jobs")

    assert (page, script) == (200, 200)
    assert (jobs, sneaky) == (401, 401)


async def test_a_missing_asset_is_a_json_404(gateway: GatewayServer) -> None:
    status, body, headers = await get(gateway.url + "/app/nothing.js")

    assert status == 404
    assert headers["Content-Type"].startswith("application/json") and "/app/nothing.js" in body
