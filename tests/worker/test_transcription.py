"""Jobs published straight to NATS come back as transcripts: every format, words, languages."""

from __future__ import annotations

import pytest
from nats.js import JetStreamContext

from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from tests.worker.jobs import AUDIO, TEXTS, recall, submit, terminal_event
from worker.service import Worker

FORMATS = ["en1.wav", "en1.mp3", "en1.ogg", "en1.flac", "en1.m4a", "en1.mp4", "en1_stereo44k.wav", "en1_8k.wav"]


@pytest.mark.parametrize("name", FORMATS)
async def test_transcript_contains_the_spoken_words(
    name: str, worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    job_id = await submit(js, topology, AUDIO / name)

    event = await terminal_event(js, job_id)

    assert event.type == "completed", event.job.error
    assert event.transcript_object is not None
    segments = await job_store.get_transcript(event.transcript_object)
    heard = " ".join(s.text for s in segments)
    assert recall(TEXTS["en1"], heard) >= 0.7, heard


async def test_job_record_is_created_and_completed(
    worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    job_id = await submit(js, topology, AUDIO / "en2.wav")

    event = await terminal_event(js, job_id)

    record = (await job_store.require(job_id)).record
    assert record.status == "done"
    assert record.worker_id == worker.worker_id
    assert record.model == "tiny.en"
    assert record.attempts == 1
    assert record.progress == 100
    assert record.detected_language == "en"
    assert record.duration_secs == pytest.approx(3.0, abs=0.5)
    assert record.started_at is not None and record.completed_at is not None
    assert record.started_at <= record.completed_at
    assert record.transcript_object == event.transcript_object
    assert event.job.status == "done"
    assert worker.jobs_done == 1


async def test_a_finished_job_records_how_long_each_stage_took(
    worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    job_id = await submit(js, topology, AUDIO / "en2.wav")

    event = await terminal_event(js, job_id)

    timings = (await job_store.require(job_id)).record.timings
    assert timings is not None and event.job.timings == timings
    assert timings.transcribe_s > 0 and timings.decode_s > 0
    assert timings.fetch_s >= 0 and timings.wait_s >= 0
    assert event.job.completed_at is not None and event.job.started_at is not None
    total = (event.job.completed_at - event.job.started_at).total_seconds()
    assert timings.fetch_s + timings.decode_s + timings.wait_s + timings.transcribe_s <= total + 0.01


@pytest.mark.slow
async def test_words_are_ordered_and_inside_their_segment(
    worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    job_id = await submit(js, topology, AUDIO / "long60.ogg")

    event = await terminal_event(js, job_id)

    assert event.type == "completed", event.job.error
    assert event.job.duration_secs == pytest.approx(62.3, abs=0.5)
    segments = await job_store.get_transcript(event.transcript_object or "")
    assert len(segments) > 3
    assert recall(TEXTS["long60"], " ".join(s.text for s in segments)) >= 0.7
    previous_end = 0.0
    for segment in segments:
        assert segment.words, segment
        assert segment.start <= segment.end <= event.job.duration_secs
        for word in segment.words:
            assert segment.start <= word.start <= word.end <= segment.end
            assert word.start >= previous_end
            assert 0.0 <= word.probability <= 1.0
            previous_end = word.end
        assert " ".join(w.word for w in segment.words) == segment.text


async def test_decode_parameters_do_not_leak_between_jobs(
    worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    without_words = await submit(js, topology, AUDIO / "en3.wav", beam_size=5, word_timestamps=False)
    with_words = await submit(js, topology, AUDIO / "en3.wav")

    first = await terminal_event(js, without_words)
    second = await terminal_event(js, with_words)

    assert first.type == second.type == "completed"
    first_segments = await job_store.get_transcript(first.transcript_object or "")
    second_segments = await job_store.get_transcript(second.transcript_object or "")
    assert first_segments and not any(s.words for s in first_segments)
    assert second_segments and all(s.words for s in second_segments)


@pytest.mark.parametrize(
    ("name", "language", "opening"), [("de1.wav", "de", "guten morgen"), ("es1.wav", "es", "buenos días")]
)
async def test_language_is_detected(
    name: str,
    language: str,
    opening: str,
    base_worker: Worker,
    js: JetStreamContext,
    topology: Topology,
    job_store: JobStore,
) -> None:
    job_id = await submit(js, topology, AUDIO / name)

    event = await terminal_event(js, job_id)

    assert event.type == "completed", event.job.error
    assert event.job.language == language
    assert (await job_store.require(job_id)).record.detected_language == language
    segments = await job_store.get_transcript(event.transcript_object or "")
    heard = " ".join(s.text for s in segments).lower()
    assert opening in heard, heard


async def test_german_is_translated_to_english(
    base_worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    job_id = await submit(js, topology, AUDIO / "de1.wav", language="de", task="translate", beam_size=5)

    event = await terminal_event(js, job_id)

    assert event.type == "completed", event.job.error
    heard = " ".join(s.text for s in await job_store.get_transcript(event.transcript_object or ""))
    assert recall(TEXTS["de1_en"], heard) >= 0.5, heard
    assert recall(TEXTS["de1"], heard) < 0.3, heard


async def test_english_only_model_refuses_another_language(
    worker: Worker, js: JetStreamContext, topology: Topology
) -> None:
    job_id = await submit(js, topology, AUDIO / "de1.wav", language="de")

    event = await terminal_event(js, job_id)

    assert event.type == "failed"
    assert event.job.error is not None
    assert "English-only" in event.job.error and "'de'" in event.job.error
