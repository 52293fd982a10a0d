"""The whole service over HTTP: real gateway, real worker with tiny.en, real nats-server, real audio."""

from __future__ import annotations

import asyncio
import re
import string
from pathlib import Path

import aiohttp
import pytest

from tests.gateway.conftest import AUDIO, TEXTS, ServerSentEvent, audio_form, read_events

pytestmark = pytest.mark.usefixtures("worker")

SRT_CUE = re.compile(r"\d+\n\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}\n\S.*\n")
VTT_CUE = re.compile(r"\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3}\n\S.*\n")


def words(text: str) -> list[str]:
    return text.lower().translate(str.maketrans("", "", string.punctuation)).split()


def assert_transcribes(text: str, expected: str) -> None:
    """Most of the expected words, in a transcript of synthetic speech by the smallest model."""
    got = set(words(text))
    wanted = words(expected)
    assert sum(w in got for w in wanted) >= 0.7 * len(wanted), (text, expected)


async def submit(http: aiohttp.ClientSession, path: Path = AUDIO / "en1.wav", **fields: str) -> str:
    async with http.post("/jobs", data=audio_form(path, **fields)) as response:
        assert response.status == 202, await response.text()
        return (await response.json())["job_id"]


async def follow(http: aiohttp.ClientSession, job_id: str) -> list[ServerSentEvent]:
    async with http.get(f"/jobs/{job_id}/stream") as response:
        assert response.status == 200
        events, _ = await read_events(response)
    return events


async def get_job(http: aiohttp.ClientSession, job_id: str) -> dict:
    async with http.get(f"/jobs/{job_id}") as response:
        assert response.status == 200
        return await response.json()


@pytest.mark.parametrize("name", ["en1.wav", "en1.mp3", "en1.ogg", "en1.flac", "en1.m4a"])
async def test_audio_in_each_format_is_transcribed(http: aiohttp.ClientSession, name: str) -> None:
    job_id = await submit(http, AUDIO / name, language="en")
    await follow(http, job_id)
    job = await get_job(http, job_id)
    assert job["status"] == "done", job["error"]
    assert job["language"] == "en"
    assert job["progress"] == 100
    assert job["duration_secs"] > 1
    assert job["completed_at"] is not None
    assert_transcribes(" ".join(s["text"] for s in job["segments"]), TEXTS["en1"])


async def test_stream_of_a_job_runs_progress_in_order_then_done_with_the_transcript(
    http: aiohttp.ClientSession,
) -> None:
    job_id = await submit(http, AUDIO / "en2.wav", language="en")
    events = await follow(http, job_id)
    assert [e.event for e in events][-1] == "done"
    progress = [e for e in events if e.event == "progress"]
    assert progress, "no progress event before done"
    percents = [e.data["percent"] for e in progress]
    assert percents == sorted(percents)
    live_ids = [int(e.id) for e in progress if e.id is not None]
    assert live_ids == sorted(set(live_ids))
    assert all(e.data["type"] == "progress" and e.data["job_id"] == job_id for e in progress)
    done = events[-1].data
    assert done["type"] == "done"
    assert done["job"]["status"] == "done"
    assert done["job"]["segments"]
    assert done["job"]["segments"][0]["words"]
    assert_transcribes(" ".join(s["text"] for s in done["job"]["segments"]), TEXTS["en2"])


async def test_late_client_of_a_done_job_gets_done_with_the_transcript(http: aiohttp.ClientSession) -> None:
    job_id = await submit(http, language="en")
    await follow(http, job_id)
    events = await follow(http, job_id)
    assert [e.event for e in events] == ["done"]
    assert events[0].data["job"]["segments"]


async def test_transcript_formats_of_a_done_job(http: aiohttp.ClientSession) -> None:
    job_id = await submit(http, AUDIO / "en3.wav", language="en")
    await follow(http, job_id)
    texts = {}
    for fmt in ("txt", "srt", "vtt", "json"):
        async with http.get(f"/jobs/{job_id}/transcript?format={fmt}") as response:
            assert response.status == 200, fmt
            texts[fmt] = (response.content_type, await response.text())
    assert texts["txt"][0] == "text/plain"
    assert_transcribes(texts["txt"][1], TEXTS["en3"])
    assert texts["srt"][0] == "application/x-subrip"
    assert all(SRT_CUE.fullmatch(cue + "\n") for cue in texts["srt"][1].rstrip("\n").split("\n\n"))
    assert texts["vtt"][0] == "text/vtt"
    header, _, cues = texts["vtt"][1].partition("\n\n")
    assert header == "WEBVTT"
    assert all(VTT_CUE.fullmatch(cue + "\n") for cue in cues.rstrip("\n").split("\n\n"))
    assert texts["json"][0] == "application/json"
    assert '"start"' in texts["json"][1]


async def test_undecodable_upload_fails_and_its_stream_says_why(http: aiohttp.ClientSession) -> None:
    job_id = await submit(http, AUDIO / "not_audio.txt")
    events = await follow(http, job_id)
    assert events[-1].event == "done"
    job = events[-1].data["job"]
    assert job["status"] == "failed"
    assert job["error"]
    async with http.get(f"/jobs/{job_id}/transcript") as response:
        body = await response.json()
    assert response.status == 409
    assert "failed" in body["error"]


async def test_cancelling_a_running_job_ends_it_cancelled(http: aiohttp.ClientSession) -> None:
    job_id = await submit(http, AUDIO / "long60.ogg", language="en")
    async with http.get(f"/jobs/{job_id}/stream") as response:
        while True:
            events, _ = await read_events(response, stop_after=1)
            if events[0].event == "progress" and events[0].data["stage"] == "transcribing":
                break
        assert (await get_job(http, job_id))["status"] == "running"
        async with http.delete(f"/jobs/{job_id}") as cancelled:
            assert cancelled.status == 204
        rest, _ = await asyncio.wait_for(read_events(response), 30)
    assert rest[-1].event == "done"
    assert rest[-1].data["job"]["status"] == "cancelled"
    async with http.delete(f"/jobs/{job_id}") as again:
        assert again.status == 409


async def test_health_is_ok_with_a_live_worker(http: aiohttp.ClientSession) -> None:
    async with http.get("/health") as response:
        body = await response.json()
    assert response.status == 200, body
    assert body["status"] == "ok"
    assert body["problems"] == []
    assert [w["model"] for w in body["workers"]] == ["tiny.en"]
    assert body["workers"][0]["device"]["kind"] == "cpu"
    assert body["queue"] == {"pending": 0, "in_flight": 0, "oldest_waiting_s": None}
    assert [(m["name"], m["workers"], m["on_offer"]) for m in body["models"]] == [
        ("base", 0, True),
        ("tiny.en", 1, True),
    ]


async def test_concurrent_clients_of_one_job_see_the_same_end(http: aiohttp.ClientSession) -> None:
    job_id = await submit(http, AUDIO / "en4.wav", language="en")
    streams = await asyncio.gather(*(follow(http, job_id) for _ in range(5)))
    endings = [events[-1] for events in streams]
    assert all(e.event == "done" for e in endings)
    assert len({str(e.data) for e in endings}) == 1
    assert endings[0].data["job"]["status"] == "done"
