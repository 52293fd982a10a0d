"""`jetscribe transcribe` and `jetscribe jobs` as people and scripts run them: a subprocess against a real service."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import string
import sys
from pathlib import Path

import pytest
from nats.aio.client import Client

from client import JetscribeClient
from diarization import DiarizationWorker
from gateway.main import GatewayServer
from gateway.transcripts import FORMATS
from jetscribe.config import Settings
from schemas import DecodeOptions
from tests.frontends.conftest import AUDIO, TEXTS, StartGateway
from tests.ports import free_port

SRT_CUE = re.compile(r"\d+\n\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}\n\S")


async def jetscribe(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the `jetscribe` command; returns its exit status, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=170)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def files(folder: Path, pattern: str = "*") -> list[str]:
    """The files under `folder` matching `pattern`, relative to it, sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(pattern))


def recall(expected: str, text: str) -> float:
    def words(t: str) -> list[str]:
        return t.lower().translate(str.maketrans("", "", string.punctuation)).split()

    got = set(words(text))
    wanted = words(expected)
    return sum(w in got for w in wanted) / len(wanted)


async def job_count(gateway: GatewayServer) -> int:
    async with JetscribeClient(gateway.url) as client:
        return len([job async for job in client.jobs()])


@pytest.mark.usefixtures("worker")
@pytest.mark.timeout(300)
async def test_a_folder_of_clips_in_mixed_formats_gets_one_transcript_per_clip(
    gateway: GatewayServer, recordings: Path
) -> None:
    status, stdout, stderr = await jetscribe("transcribe", str(recordings), "--server", gateway.url)

    assert status == 0, stdout + stderr
    assert files(recordings, "*.srt") == ["day2/memo.srt", "day2/talk.srt", "en1.srt", "en2.srt", "en3.srt"]
    for clip, text in [("en2.srt", TEXTS["en2"]), ("day2/talk.srt", TEXTS["en1"])]:
        srt = (recordings / clip).read_text()
        assert SRT_CUE.match(srt), srt
        assert recall(text, srt) >= 0.7, srt
    assert "5 done" in stdout


@pytest.mark.usefixtures("worker")
@pytest.mark.timeout(300)
async def test_a_second_run_skips_finished_files_and_force_transcribes_again(
    gateway: GatewayServer, tmp_path: Path
) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("en1.wav", "en1.ogg"):
        shutil.copy(AUDIO / name, folder / name)
    first, _, _ = await jetscribe("transcribe", str(folder), "--server", gateway.url, "--format", "txt")
    jobs_after_first = await job_count(gateway)

    second, stdout, _ = await jetscribe("transcribe", str(folder), "--server", gateway.url, "--format", "txt")
    jobs_after_second = await job_count(gateway)
    forced, _, _ = await jetscribe(
        "transcribe", str(folder / "en1.ogg"), "--server", gateway.url, "--format", "txt", "--force"
    )

    assert (first, second, forced) == (0, 0, 0)
    assert files(folder) == ["en1.ogg", "en1.ogg.txt", "en1.wav", "en1.wav.txt"]
    assert jobs_after_second == jobs_after_first == 2
    assert "2 skipped" in stdout
    assert await job_count(gateway) == 3


@pytest.mark.usefixtures("worker")
@pytest.mark.timeout(300)
async def test_a_failed_file_is_reported_and_the_exit_status_is_1(gateway: GatewayServer, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(AUDIO / "en3.wav", folder / "good.wav")
    shutil.copy(AUDIO / "not_audio.txt", folder / "broken.mp3")

    status, stdout, _ = await jetscribe("transcribe", str(folder), "--server", gateway.url)

    assert status == 1
    assert (folder / "good.srt").exists() and not (folder / "broken.srt").exists()
    broken = next(line for line in stdout.splitlines() if "broken.mp3" in line)
    assert "failed" in broken and "cannot decode the audio" in broken
    assert "1 done, 1 failed" in stdout


async def test_a_model_that_is_not_on_offer_fails_the_file_with_the_gateways_reason(
    gateway: GatewayServer, tmp_path: Path
) -> None:
    shutil.copy(AUDIO / "en3.wav", tmp_path / "talk.wav")

    status, stdout, _ = await jetscribe("transcribe", str(tmp_path), "--model", "large-v3", "--server", gateway.url)

    assert status == 1
    assert not (tmp_path / "talk.srt").exists()
    assert "model 'large-v3' is not on offer" in stdout and "1 failed" in stdout, stdout


@pytest.mark.usefixtures("worker")
@pytest.mark.timeout(300)
async def test_results_of_files_and_urls_go_under_out_keeping_the_folder_layout(
    gateway: GatewayServer, recordings: Path, audio_site: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    status, stdout, stderr = await jetscribe(
        "transcribe",
        str(recordings / "day2"),
        f"{audio_site}/en2.wav",
        "--out",
        str(out),
        "--format",
        "vtt",
        "--language",
        "en",
        env={"JETSCRIBE_SERVER": gateway.url},
    )

    assert status == 0, stdout + stderr
    assert files(out) == ["en2.vtt", "memo.vtt", "talk.vtt"]
    assert (out / "en2.vtt").read_text().startswith("WEBVTT")
    assert recall(TEXTS["en2"], (out / "en2.vtt").read_text()) >= 0.7


async def test_every_transcript_format_of_the_api_is_offered() -> None:
    status, stdout, _ = await jetscribe("transcribe", "--help")

    assert status == 0
    offered = re.search(r"--format \{([a-z,]+)\}", stdout)
    assert offered is not None, stdout
    assert set(offered.group(1).split(",")) == set(FORMATS) >= {"txt", "srt", "vtt", "tsv", "json"}


@pytest.mark.usefixtures("worker")
@pytest.mark.timeout(300)
async def test_a_tsv_transcript_has_a_header_and_millisecond_times(gateway: GatewayServer, tmp_path: Path) -> None:
    shutil.copy(AUDIO / "en1.wav", tmp_path / "talk.wav")
    status, stdout, stderr = await jetscribe(
        "transcribe", str(tmp_path / "talk.wav"), "--format", "tsv", "--server", gateway.url
    )

    assert status == 0, stdout + stderr
    header, *rows = (tmp_path / "talk.tsv").read_text().splitlines()
    assert header == "start\tend\ttext"
    start, end, _ = rows[0].split("\t")
    assert 0 <= int(start) < int(end) <= 4000
    assert recall(TEXTS["en1"], " ".join(row.split("\t")[2] for row in rows)) >= 0.7


async def test_an_input_that_does_not_exist_is_a_usage_error(gateway: GatewayServer, tmp_path: Path) -> None:
    status, _, stderr = await jetscribe("transcribe", str(tmp_path / "nowhere.wav"), "--server", gateway.url)

    assert status == 2
    assert "nowhere.wav: no such file or folder" in stderr


async def test_a_decoding_flag_out_of_range_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    status, _, stderr = await jetscribe("transcribe", str(AUDIO / "en1.wav"), "--beam-size", "40", "--no-vad")

    assert status == 2
    assert "beam_size" in stderr and "<= 16" in stderr, stderr


async def test_an_unreachable_server_says_how_to_point_at_one(tmp_path: Path) -> None:
    status, _, stderr = await jetscribe(
        "transcribe", str(AUDIO / "en1.wav"), "--out", str(tmp_path), "--server", f"http://127.0.0.1:{free_port()}"
    )

    assert status == 1
    assert "JETSCRIBE_SERVER" in stderr


async def test_a_gateway_with_api_keys_needs_one_and_takes_it_from_the_environment(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(api_keys=("s3cret",))

    refused, _, stderr = await jetscribe("jobs", "list", "--server", gateway.url)
    listed, stdout, _ = await jetscribe(
        "jobs", "list", "--json", env={"JETSCRIBE_SERVER": gateway.url, "JETSCRIBE_API_KEY": "s3cret"}
    )

    assert refused == 1 and "JETSCRIBE_API_KEY" in stderr
    assert listed == 0 and json.loads(stdout) == {"jobs": [], "next_cursor": None}


async def test_jobs_list_get_and_cancel_print_the_apis_json(gateway: GatewayServer) -> None:
    async with JetscribeClient(gateway.url) as client:
        ids = [await client.submit(AUDIO / "en1.wav") for _ in range(3)]

    _, listed, _ = await jetscribe("jobs", "list", "--json", "--limit", "2", "--server", gateway.url)
    _, everything, _ = await jetscribe("jobs", "list", "--all", "--json", "--limit", "2", "--server", gateway.url)
    _, got, _ = await jetscribe("jobs", "get", ids[0], "--json", "--server", gateway.url)
    cancelled, _, _ = await jetscribe("jobs", "cancel", ids[1], "--server", gateway.url)
    again, _, stderr = await jetscribe("jobs", "cancel", ids[1], "--server", gateway.url)
    _, queued, _ = await jetscribe("jobs", "list", "--status", "queued", "--json", "--server", gateway.url)

    page = json.loads(listed)
    assert [j["id"] for j in page["jobs"]] == ids[::-1][:2] and page["next_cursor"]
    assert [j["id"] for j in json.loads(everything)["jobs"]] == ids[::-1]
    assert json.loads(everything)["next_cursor"] is None
    assert json.loads(got)["id"] == ids[0] and json.loads(got)["status"] == "queued"
    assert (cancelled, again) == (0, 1)
    assert "already finished (cancelled)" in stderr
    assert [j["id"] for j in json.loads(queued)["jobs"]] == [ids[2], ids[0]]


@pytest.mark.usefixtures("worker")
async def test_jobs_wait_prints_each_job_as_it_ends_and_fails_unless_all_are_done(gateway: GatewayServer) -> None:
    async with JetscribeClient(gateway.url) as client:
        done = await client.submit(AUDIO / "en1.ogg")
        await client.wait(done)
        cancelled = await client.submit(AUDIO / "en1.wav")
        await client.cancel(cancelled)

    ok, stdout, _ = await jetscribe("jobs", "wait", done, "--json", "--server", gateway.url)
    not_ok, text, stderr = await jetscribe("jobs", "wait", done, cancelled, "--server", gateway.url)

    assert ok == 0 and json.loads(stdout)["status"] == "done" and json.loads(stdout)["segments"]
    assert not_ok == 1
    assert f"{cancelled} cancelled" in text and cancelled in stderr


async def test_jobs_get_shows_a_person_the_state(gateway: GatewayServer) -> None:
    async with JetscribeClient(gateway.url) as client:
        job_id = await client.submit(AUDIO / "en1.wav", language="en")

    status, stdout, _ = await jetscribe("jobs", "get", job_id, "--server", gateway.url)

    assert status == 0
    assert f"job       {job_id}" in stdout and "status    queued (0%)" in stdout and "language en" in stdout


async def test_output_cut_short_by_a_closed_pipe_ends_quietly() -> None:
    read, write = os.pipe()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "schema", stdout=write, stderr=asyncio.subprocess.PIPE
    )
    # The reader is gone before the command writes its first byte, as `| head` is after a few lines.
    os.close(write)
    os.close(read)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 141
    assert stderr.decode() == ""


@pytest.mark.usefixtures("worker")
@pytest.mark.timeout(300)
async def test_speakers_gives_a_text_transcript_in_turns_of_labelled_speakers(
    gateway: GatewayServer, settings: Settings, nc: Client, conversation_wav: Path, tmp_path: Path
) -> None:
    shutil.copy(conversation_wav, tmp_path / "meeting.wav")
    async with DiarizationWorker(settings, nc):
        status, stdout, stderr = await jetscribe(
            "transcribe", str(tmp_path / "meeting.wav"), "--format", "txt", "--speakers", "2", "--server", gateway.url
        )

    assert status == 0, stdout + stderr
    turns = (tmp_path / "meeting.txt").read_text().splitlines()
    assert len(turns) >= 4
    assert {turn.split(": ", 1)[0] for turn in turns} == {"SPEAKER_00", "SPEAKER_01"}
    assert turns[0].startswith("SPEAKER_00: ")


@pytest.mark.usefixtures("worker")
async def test_jobs_get_shows_the_speakers_of_a_diarized_job(
    gateway: GatewayServer, settings: Settings, nc: Client, conversation_wav: Path
) -> None:
    async with DiarizationWorker(settings, nc), JetscribeClient(gateway.url) as client:
        job = await client.wait(await client.submit(conversation_wav, options=DecodeOptions(diarize=True)))
    assert job.status == "done", job.error

    status, stdout, _ = await jetscribe("jobs", "get", job.id, "--server", gateway.url)

    assert status == 0
    assert re.search(r"speaker   SPEAKER_00: \d+\.\d s in \d+ turns", stdout), stdout
    assert re.search(r"\] SPEAKER_01: \w", stdout), stdout


async def test_a_speaker_count_out_of_range_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    status, _, stderr = await jetscribe("transcribe", str(AUDIO / "en1.wav"), "--min-speakers", "3", "--speakers", "2")

    assert status == 2
    assert "num_speakers" in stderr and "min_speakers" in stderr, stderr
