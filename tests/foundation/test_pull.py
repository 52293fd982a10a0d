"""`jetscribe models pull`: resumable download from a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from aiohttp import web

from jetscribe.errors import ModelError
from jetscribe.models.digests import GGML_SHA256, sha256_of
from jetscribe.models.pull import pull_model

Mode = Literal["normal", "ignore_range", "cut", "error"]
CHUNK = 1 << 20


class ModelServer:
    """Serves files by name from its own thread and event loop, so tests can call the synchronous pull.

    `mode` picks how it misbehaves; `ranges` records each request's Range header.
    """

    def __init__(self) -> None:
        self.files: dict[str, Path] = {}
        self.mode: Mode = "normal"
        self.ranges: list[str | None] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="model-server")
        self._runner: web.AppRunner | None = None

    def __enter__(self) -> ModelServer:
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _start(self) -> str:
        app = web.Application()
        app.router.add_get("/models/{file}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}/models"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.ranges.append(request.headers.get("Range"))
        path = self.files.get(request.match_info["file"])
        if path is None:
            raise web.HTTPNotFound()
        if self.mode == "error":
            raise web.HTTPInternalServerError(text="disk on fire")
        if self.mode == "normal":
            return web.FileResponse(path)
        return await self._stream_whole(request, path, cut=self.mode == "cut")

    async def _stream_whole(self, request: web.Request, path: Path, *, cut: bool) -> web.StreamResponse:
        """200 with the whole file, whatever the Range; with `cut`, drop the connection halfway."""
        data = await asyncio.to_thread(path.read_bytes)
        response = web.StreamResponse()
        response.content_length = len(data)
        await response.prepare(request)
        limit = len(data) // 2 if cut else len(data)
        for start in range(0, limit, CHUNK):
            await response.write(data[start : min(start + CHUNK, limit)])
        if cut:
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write_eof()
        return response


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer() as model_server:
        yield model_server


@pytest.fixture
def served(server: ModelServer, tiny_model: Path) -> ModelServer:
    server.files["ggml-tiny.en.bin"] = tiny_model
    return server


@pytest.fixture(scope="module")
def tiny_sha256(tiny_model: Path) -> str:
    """The digest of the file the test server holds: the test's tiny.en import, which is not byte for byte
    the whisper.cpp repository's file that the release pins, so each pull names it."""
    return sha256_of([tiny_model])


def pull(name: str, models_dir: Path, base_url: str, sha256: str) -> tuple[Path, str]:
    progress = io.StringIO()
    path = pull_model(name, models_dir, base_url, sha256=sha256, progress=progress)
    return path, progress.getvalue()


def part_of(models_dir: Path, name: str) -> Path:
    return models_dir / f"ggml-{name}.bin.part"


def test_pull_downloads_the_model_into_place(
    served: ModelServer, tiny_model: Path, tmp_path: Path, tiny_sha256: str
) -> None:
    path, progress = pull("tiny.en", tmp_path, served.url, tiny_sha256)

    assert path == tmp_path / "ggml-tiny.en.bin"
    assert path.read_bytes() == tiny_model.read_bytes()
    assert not part_of(tmp_path, "tiny.en").exists()
    assert "100%" in progress
    assert f"{tiny_model.stat().st_size / 1e6:.1f} MB" in progress


def test_pull_resumes_a_partial_download_with_a_range_request(
    served: ModelServer, tiny_model: Path, tmp_path: Path, tiny_sha256: str
) -> None:
    original = tiny_model.read_bytes()
    offset = len(original) * 3 // 10
    part_of(tmp_path, "tiny.en").write_bytes(original[:offset])

    path, _ = pull("tiny.en", tmp_path, served.url, tiny_sha256)

    assert served.ranges == [f"bytes={offset}-"]
    assert path.read_bytes() == original


def test_pull_starts_over_when_the_server_ignores_range(
    served: ModelServer, tiny_model: Path, tmp_path: Path, tiny_sha256: str
) -> None:
    served.mode = "ignore_range"
    part_of(tmp_path, "tiny.en").write_bytes(b"stale bytes from another file" * 1000)

    path, _ = pull("tiny.en", tmp_path, served.url, tiny_sha256)

    assert served.ranges == [f"bytes={29 * 1000}-"]
    assert path.read_bytes() == tiny_model.read_bytes()


def test_pull_starts_over_when_the_part_file_is_longer_than_the_model(
    served: ModelServer, tiny_model: Path, tmp_path: Path, tiny_sha256: str
) -> None:
    size = tiny_model.stat().st_size
    part_of(tmp_path, "tiny.en").write_bytes(b"\0" * (size + 10))

    path, _ = pull("tiny.en", tmp_path, served.url, tiny_sha256)

    assert served.ranges == [f"bytes={size + 10}-", None]
    assert path.read_bytes() == tiny_model.read_bytes()


def test_interrupted_pull_keeps_the_part_file_and_the_next_pull_resumes_it(
    served: ModelServer, tiny_model: Path, tmp_path: Path, tiny_sha256: str
) -> None:
    served.mode = "cut"
    with pytest.raises(ModelError, match="run the pull again to resume"):
        pull("tiny.en", tmp_path, served.url, tiny_sha256)
    kept = part_of(tmp_path, "tiny.en").stat().st_size
    assert 0 < kept <= tiny_model.stat().st_size // 2
    assert not (tmp_path / "ggml-tiny.en.bin").exists()

    served.mode = "normal"
    path, _ = pull("tiny.en", tmp_path, served.url, tiny_sha256)

    assert served.ranges[-1] == f"bytes={kept}-"
    assert path.read_bytes() == tiny_model.read_bytes()


def test_pull_of_an_unknown_model_names_the_model_and_the_url(
    server: ModelServer, tmp_path: Path, tiny_sha256: str
) -> None:
    with pytest.raises(ModelError) as caught:
        pull("nosuch", tmp_path, server.url, tiny_sha256)

    assert str(caught.value).startswith(f"no model nosuch at {server.url}/ggml-nosuch.bin")
    assert list(tmp_path.iterdir()) == []


def test_pull_reports_a_server_error_with_its_status(served: ModelServer, tmp_path: Path, tiny_sha256: str) -> None:
    served.mode = "error"

    with pytest.raises(ModelError, match="HTTP 500"):
        pull("tiny.en", tmp_path, served.url, tiny_sha256)


def test_pull_discards_a_download_that_is_not_a_model(server: ModelServer, tmp_path: Path) -> None:
    corrupt = tmp_path / "served" / "ggml-corrupt.bin"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"<html>not a model</html>" * 100_000)
    server.files["ggml-corrupt.bin"] = corrupt
    models = tmp_path / "models"

    with pytest.raises(ModelError, match="wrong magic number") as caught:
        pull("corrupt", models, server.url, sha256=sha256_of([corrupt]))

    assert "did not give the expected whisper.cpp model" in str(caught.value)
    assert list(models.iterdir()) == []


def test_pull_discards_a_download_that_does_not_match_the_pinned_digest(
    served: ModelServer, tmp_path: Path, tiny_sha256: str
) -> None:
    with pytest.raises(ModelError) as caught:
        pull_model("tiny.en", tmp_path, served.url, progress=io.StringIO())

    assert f"expected {GGML_SHA256['tiny.en']}, got {tiny_sha256}" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_pull_of_a_model_without_a_pinned_digest_asks_for_one_before_downloading(
    served: ModelServer, tmp_path: Path
) -> None:
    with pytest.raises(ModelError, match=r"no pinned SHA-256 .* --sha256 HEX"):
        pull_model("my-finetune", tmp_path, served.url, progress=io.StringIO())

    assert served.ranges == []


def test_pull_reports_an_unreachable_server(tmp_path: Path, tiny_sha256: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    with pytest.raises(ModelError, match=f"downloading http://127.0.0.1:{port}/ggml-tiny.en.bin failed"):
        pull("tiny.en", tmp_path, f"http://127.0.0.1:{port}", tiny_sha256)


def test_pull_refuses_a_name_that_is_not_a_model_name(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="is not a model name"):
        pull_model("../etc/passwd", tmp_path, "http://127.0.0.1:1")


def jetscribe_pull(name: str, data_dir: Path, base_url: str, sha256: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "JETSCRIBE_MODELS_DIR"}
    env |= {"DATA_DIR": str(data_dir), "JETSCRIBE_MODEL_BASE_URL": base_url}
    command = [str(Path(sys.executable).parent / "jetscribe"), "models", "pull", name, "--sha256", sha256]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_the_cli_pulls_from_the_configured_base_url_into_the_models_directory(
    served: ModelServer, tiny_model: Path, tmp_path: Path, tiny_sha256: str
) -> None:
    result = jetscribe_pull("tiny.en", tmp_path, served.url, tiny_sha256)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "models" / "ggml-tiny.en.bin")
    assert "100%" in result.stderr
    assert (tmp_path / "models" / "ggml-tiny.en.bin").read_bytes() == tiny_model.read_bytes()


def test_the_cli_reports_an_unknown_model_without_a_traceback(
    server: ModelServer, tmp_path: Path, tiny_sha256: str
) -> None:
    result = jetscribe_pull("nosuch", tmp_path, server.url, tiny_sha256)

    assert result.returncode == 1
    assert result.stderr.startswith(f"jetscribe: no model nosuch at {server.url}/ggml-nosuch.bin (HTTP 404)")
