"""Hostile audio never hurts a worker: small files that decode to hours fail at once naming the limit, files that
make ffmpeg open other files or URLs are refused as bad audio, and no error shows a worker path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from nats.js import JetStreamContext

from jetscribe.config import Settings
from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from tests.worker.conftest import StartWorker
from tests.worker.hostile import ffconcat, hls_playlist, lying_wav, sdp, silent_flac, understated_mp3
from tests.worker.jobs import AUDIO, submit, terminal_event
from worker.service import Worker

REFUSED_FORMAT = "its format is not one this service accepts"


async def fails_at_once(js: JetStreamContext, job_store: JobStore, job_id: str) -> str:
    """The job's error, after checking it failed on its first delivery (permanent: no retry)."""
    event = await terminal_event(js, job_id)
    assert event.type == "failed", event.job
    record = (await job_store.require(job_id)).record
    assert record.status == "failed" and record.attempts == 1
    assert event.job.error is not None
    return event.job.error


async def test_wav_whose_header_claims_ten_hours_fails_at_once_naming_the_limit(
    worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore, tmp_path: Path
) -> None:
    audio = lying_wav(tmp_path / "ten-hours.wav", hours=10)
    assert audio.stat().st_size < 40_000

    error = await fails_at_once(js, job_store, await submit(js, topology, audio))

    assert "lasts 10:00:00 by its header" in error
    assert "at most 4:00:00 of audio per job (JETSCRIBE_MAX_AUDIO_S=14400)" in error
    next_job = await submit(js, topology, AUDIO / "en1.wav")
    assert (await terminal_event(js, next_job)).type == "completed"


async def test_hour_of_silent_flac_over_the_limit_fails_before_it_is_decoded(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology, job_store: JobStore, tmp_path: Path
) -> None:
    audio = silent_flac(tmp_path / "silence.flac", seconds=3600)
    assert audio.stat().st_size < 1_000_000
    async with start_worker(max_audio_s=600.0):
        job_id = await submit(js, topology, audio)
        error = await fails_at_once(js, job_store, job_id)

    assert "lasts 1:00:00 by its header" in error
    assert "at most 0:10:00 of audio per job (JETSCRIBE_MAX_AUDIO_S=600)" in error
    assert (await job_store.require(job_id)).record.timings is None


@pytest.mark.slow
async def test_audio_whose_header_understates_its_length_is_stopped_while_decoding(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology, job_store: JobStore, tmp_path: Path
) -> None:
    audio = understated_mp3(tmp_path / "understated.mp3", tmp_path, seconds=3600)
    async with start_worker(max_audio_s=600.0):
        error = await fails_at_once(js, job_store, await submit(js, topology, audio))
        next_job = await submit(js, topology, AUDIO / "en2.wav")
        completed = await terminal_event(js, next_job)

    assert "goes on past the limit while decoding" in error
    assert "(JETSCRIBE_MAX_AUDIO_S=600)" in error
    assert completed.type == "completed"


async def test_concat_script_naming_another_file_of_the_worker_is_refused(
    settings: Settings, worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore,
    tmp_path: Path,
) -> None:  # fmt: skip
    assert settings.work_dir is not None
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    secret = settings.work_dir / "jetscribe-other-job.audio"
    secret.write_bytes((AUDIO / "en1.wav").read_bytes())
    script = ffconcat(tmp_path / "playlist.ffconcat", secret, AUDIO / "en2.wav")

    error = await fails_at_once(js, job_store, await submit(js, topology, script))

    assert REFUSED_FORMAT in error
    assert "concat scripts" in error
    assert str(settings.work_dir) not in error and "jetscribe-other-job" not in error


@pytest.fixture
async def loopback_host() -> AsyncIterator[tuple[str, list[str]]]:
    """An HTTP server on loopback serving any path; yields its URL and the paths it was asked for."""
    asked: list[str] = []

    async def serve(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.Response(body=(AUDIO / "en1.wav").read_bytes())

    app = web.Application()
    app.router.add_get("/{name}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}", asked
    await runner.cleanup()


async def test_hls_playlist_pointing_at_a_loopback_url_is_refused_without_a_request(
    worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore, tmp_path: Path,
    loopback_host: tuple[str, list[str]],
) -> None:  # fmt: skip
    url, asked = loopback_host
    playlist = hls_playlist(tmp_path / "live.m3u8", f"{url}/segment0.ts")

    error = await fails_at_once(js, job_store, await submit(js, topology, playlist))

    assert REFUSED_FORMAT in error and "playlists" in error
    assert asked == []


async def test_concat_script_naming_a_loopback_url_is_refused_without_a_request(
    worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore, tmp_path: Path,
    loopback_host: tuple[str, list[str]],
) -> None:  # fmt: skip
    url, asked = loopback_host
    script = ffconcat(tmp_path / "remote.ffconcat", f"{url}/talk.wav")

    error = await fails_at_once(js, job_store, await submit(js, topology, script))

    assert REFUSED_FORMAT in error
    assert asked == []


async def test_sdp_description_of_a_loopback_stream_is_refused(
    worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore, tmp_path: Path
) -> None:
    description = sdp(tmp_path / "stream.sdp", port=5004)

    error = await fails_at_once(js, job_store, await submit(js, topology, description))

    assert REFUSED_FORMAT in error


async def test_errors_of_undecodable_audio_carry_no_worker_path(
    settings: Settings, worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    assert settings.work_dir is not None
    names = ("not_audio.txt", "truncated.mp3", "video_no_audio.mp4")
    jobs = [await submit(js, topology, AUDIO / name) for name in names]

    events = [await terminal_event(js, job_id) for job_id in jobs]

    errors = [event.job.error or "" for event in events]
    assert errors[0] and errors[2]
    assert all(str(settings.work_dir) not in error and "jetscribe-job-" not in error for error in errors)
