"""The official `openai` SDK against a running service: every response format (diarized_json too), granularities,
translation, streaming and the model list. The transcription requests share one job through an Idempotency-Key (the same
audio and options), so the formats cost one transcription between them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
from openai import AsyncOpenAI
from openai.types.audio import TranscriptionDiarized

from tests.openai_api.conftest import AUDIO, TEXTS, Service

pytestmark = pytest.mark.asyncio(loop_scope="module")

SHARED_KEY: Final = "openai-sdk-shared-en1"
CLIP: Final = AUDIO / "en1.wav"


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def assert_transcribes(text: str, expected: str) -> None:
    """Most of the expected words, in a transcript of synthetic speech by the smallest model."""
    got = set(words(text))
    wanted = words(expected)
    assert sum(w in got for w in wanted) >= 0.7 * len(wanted), (text, expected)


async def transcribe_shared(client: AsyncOpenAI, response_format: Any) -> Any:
    """en1 with word and segment timestamps: the first call makes the job, the others replay it."""
    raw = await client.audio.transcriptions.with_raw_response.create(
        file=CLIP,
        model="whisper-1",
        response_format=response_format,
        timestamp_granularities=["word", "segment"],
        extra_headers={"Idempotency-Key": SHARED_KEY},
    )
    return raw


async def test_json_answer_is_the_text_of_a_durable_job_listed_in_get_jobs(
    openai_client: AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    raw = await transcribe_shared(openai_client, "json")
    transcription = raw.parse()
    job_id = raw.headers["x-job-id"]
    assert_transcribes(transcription.text, TEXTS["en1"])
    assert transcription.usage is not None and transcription.usage.type == "duration"
    async with http.get("/jobs") as response:
        listed = {job["id"]: job["status"] for job in (await response.json())["jobs"]}
    assert listed[job_id] == "done"
    async with http.get(f"/jobs/{job_id}") as response:
        job = await response.json()
    assert transcription.text == " ".join(segment["text"] for segment in job["segments"])


async def test_text_answer_is_plain_text(openai_client: AsyncOpenAI) -> None:
    text = (await transcribe_shared(openai_client, "text")).parse()
    assert isinstance(text, str)
    assert_transcribes(text, TEXTS["en1"])
    assert not text.lstrip().startswith("{")


async def test_srt_answer_is_subrip(openai_client: AsyncOpenAI) -> None:
    srt = (await transcribe_shared(openai_client, "srt")).parse()
    assert re.match(r"1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n", srt), srt
    assert_transcribes(srt, TEXTS["en1"])


async def test_vtt_answer_is_webvtt(openai_client: AsyncOpenAI) -> None:
    vtt = (await transcribe_shared(openai_client, "vtt")).parse()
    assert vtt.startswith("WEBVTT\n\n")
    assert re.search(r"\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}\n", vtt), vtt


async def test_verbose_json_fills_every_segment_field_and_lists_words(openai_client: AsyncOpenAI) -> None:
    verbose = (await transcribe_shared(openai_client, "verbose_json")).parse()
    assert verbose.language == "english"
    assert verbose.duration > 1.0
    assert_transcribes(verbose.text, TEXTS["en1"])
    assert verbose.segments
    for n, segment in enumerate(verbose.segments):
        assert segment.id == n
        assert 0 <= segment.start < segment.end <= verbose.duration + 0.1
        assert segment.seek == round(segment.start * 100)
        assert segment.tokens and all(isinstance(t, int) for t in segment.tokens)
        assert segment.avg_logprob is not None and segment.avg_logprob <= 0
        assert segment.no_speech_prob is not None and 0 <= segment.no_speech_prob <= 1
        assert segment.compression_ratio is not None and segment.compression_ratio > 0
        assert segment.temperature == 0.0
    assert verbose.words is not None
    assert [w.word.lower().strip(".,") for w in verbose.words][:2] == ["the", "children"]
    assert all(w.start <= w.end for w in verbose.words)


async def test_verbose_json_lists_words_only_when_asked(openai_client: AsyncOpenAI, service: Service) -> None:
    verbose = await openai_client.audio.transcriptions.create(
        file=AUDIO / "en3.wav", model=service.settings.whisper_model, response_format="verbose_json"
    )
    assert verbose.words is None
    assert verbose.segments
    assert_transcribes(verbose.text, TEXTS["en3"])


async def test_translation_answers_in_english(openai_client: AsyncOpenAI, http: aiohttp.ClientSession) -> None:
    with pytest.deprecated_call():  # the SDK marks OpenAI's translations endpoint deprecated; users still call it
        raw = await openai_client.audio.translations.with_raw_response.create(file=AUDIO / "en2.wav", model="whisper-1")
    assert_transcribes(raw.parse().text, TEXTS["en2"])
    async with http.get(f"/jobs/{raw.headers['x-job-id']}") as response:
        assert (await response.json())["task"] == "translate"


async def test_stream_sends_text_deltas_then_the_whole_text(openai_client: AsyncOpenAI) -> None:
    stream = await openai_client.audio.transcriptions.create(
        file=AUDIO / "en4.wav", model="whisper-1", stream=True, include=["logprobs"]
    )
    events = [event async for event in stream]
    assert [e.type for e in events[:-1]] == ["transcript.text.delta"] * (len(events) - 1)
    assert len(events) >= 2
    done = events[-1]
    assert done.type == "transcript.text.done"
    assert "".join(e.delta for e in events[:-1]) == done.text
    assert_transcribes(done.text, TEXTS["en4"])
    assert all(e.logprobs and all(p.logprob <= 0 for p in e.logprobs) for e in events[:-1])


async def test_diarized_json_takes_the_number_of_speakers_by_name(
    openai_client: AsyncOpenAI, conversation_wav: Path
) -> None:
    diarized = await openai_client.audio.transcriptions.create(
        file=conversation_wav, model="whisper-1", response_format="diarized_json", extra_body={"num_speakers": "1"}
    )

    assert isinstance(diarized, TranscriptionDiarized)
    assert {s.speaker for s in diarized.segments} == {"A"}


async def test_models_lists_the_served_model_and_whisper_1(openai_client: AsyncOpenAI, service: Service) -> None:
    models = [model.id async for model in openai_client.models.list()]
    assert models == [service.settings.whisper_model, "whisper-1"]


async def test_diarized_json_labels_each_turn_with_openais_speaker_letters(
    openai_client: AsyncOpenAI, http: aiohttp.ClientSession, conversation_wav: Path
) -> None:
    raw = await openai_client.audio.transcriptions.with_raw_response.create(
        file=conversation_wav, model="whisper-1", response_format="diarized_json"
    )
    diarized = raw.parse()

    assert isinstance(diarized, TranscriptionDiarized)
    assert {s.speaker for s in diarized.segments} == {"A", "B"} and diarized.segments[0].speaker == "A"
    assert [s.id for s in diarized.segments] == [f"seg_{n}" for n in range(len(diarized.segments))]
    assert all(s.type == "transcript.text.segment" and s.start < s.end for s in diarized.segments)
    assert diarized.text == " ".join(s.text for s in diarized.segments)
    assert diarized.duration > 25 and diarized.usage is not None
    async with http.get(f"/jobs/{raw.headers['x-job-id']}") as response:
        job = await response.json()
    letters = {"SPEAKER_00": "A", "SPEAKER_01": "B"}
    spoken = [segment for segment in job["segments"] if segment["text"].strip()]
    assert [s.speaker for s in diarized.segments] == [letters[segment["speaker"]] for segment in spoken]
