"""Front-end fixtures: a real running service (gateway and worker on a real nats-server) and audio on an HTTP server."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
from aiohttp import web
from nats.aio.client import Client

from gateway.main import GatewayServer
from jetscribe.config import Settings
from jetscribe.topology import ensure_topology

AUDIO: Final = Path(__file__).parents[1] / "fixtures" / "audio"
TEXTS: Final[dict[str, str]] = json.loads((AUDIO / "texts.json").read_text())

StartGateway = Callable[..., Awaitable[GatewayServer]]


@pytest.fixture
async def start_gateway(settings: Settings, nc: Client) -> AsyncIterator[StartGateway]:
    """Start a gateway on loopback with `settings` changed by keyword arguments."""
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> GatewayServer:
            changed = msgspec.structs.replace(settings, **overrides)
            topology = await ensure_topology(nc.jetstream(), changed)
            return await stack.enter_async_context(GatewayServer(changed, nc, topology))

        yield start


@pytest.fixture
async def gateway(start_gateway: StartGateway) -> GatewayServer:
    """A gateway with the test's settings; add the `worker` fixture for jobs to run."""
    return await start_gateway()


@pytest.fixture
async def audio_site() -> AsyncIterator[str]:
    """A real HTTP server on loopback serving the audio fixtures at `/<name>`; its base URL."""
    app = web.Application()

    async def audio(request: web.Request) -> web.StreamResponse:
        path = AUDIO / request.match_info["name"]
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    app.router.add_get("/{name}", audio)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    """A folder of real clips in mixed formats, one in a subfolder, and a file that is not audio."""
    folder = tmp_path / "recordings"
    (folder / "day2").mkdir(parents=True)
    for name in ("en1.wav", "en2.wav", "en3.wav"):
        shutil.copy(AUDIO / name, folder / name)
    shutil.copy(AUDIO / "en1.mp3", folder / "day2" / "talk.mp3")
    shutil.copy(AUDIO / "en1.ogg", folder / "day2" / "memo.ogg")
    return folder
