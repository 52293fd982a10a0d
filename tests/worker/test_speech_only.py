"""Transcripts hold what was said, where it was said: no text for silence, noise or music; speech after silence
keeps its own time; the default audio track is heard; channels that cancel still speak; every segment carries
Whisper's own measures of it.

Each recording is built here (tests/worker/recordings.py) after a kind reported against Whisper servers
(/work/shared/inputs/reported): the tiny.en worker runs the jobs, through NATS, as in production.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from nats.js import JetStreamContext

from jetscribe.jobstore import JobStore
from jetscribe.topology import Topology
from schemas import Segment
from tests.worker import recordings
from tests.worker.jobs import recall, submit, terminal_event
from worker.service import Worker

FIRST = "The children are playing in the garden."
SECOND = "Please close the door when you leave the room."


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every recording these tests submit, built once for the module."""
    d = tmp_path_factory.mktemp("recordings")
    first = recordings.speech(d, "first", FIRST)
    second = recordings.speech(d, "second", SECOND)
    quiet3 = recordings.silence(d, "quiet3", 3)
    return {
        "silence": recordings.silence(d, "silence", 10),
        "noise": recordings.noise(d, "noise", 10),
        "tones": recordings.tones(d, "tones", 10),
        "after_silence": recordings.joined(d, "after_silence", recordings.silence(d, "quiet20", 20), first),
        "apart": recordings.joined(d, "apart", first, recordings.silence(d, "quiet40", 40), second),
        "two_tracks": recordings.two_tracks_default_second(d, "two_tracks", quiet3, first),
        "opposite_phase": recordings.opposite_phase(d, "opposite_phase", first),
    }


async def _segments(
    js: JetStreamContext, topology: Topology, job_store: JobStore, audio: Path, **options: object
) -> list[Segment]:
    job_id = await submit(js, topology, audio, language="en", options=options)
    event = await terminal_event(js, job_id)
    assert event.type == "completed", event.job.error
    return await job_store.get_transcript(event.transcript_object or "")


@pytest.mark.parametrize("kind", ["silence", "noise", "tones"])
async def test_audio_without_speech_gives_no_segments(
    kind: str, made: dict[str, Path], worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    assert await _segments(js, topology, job_store, made[kind]) == []


async def test_silence_with_no_language_given_is_done_with_language_null(
    made: dict[str, Path], worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    job_id = await submit(js, topology, made["silence"])

    event = await terminal_event(js, job_id)

    assert event.type == "completed", event.job.error
    assert event.job.status == "done"
    assert event.job.language is None and event.job.language_probability is None
    assert await job_store.get_transcript(event.transcript_object or "") == []


async def test_a_sentence_after_long_silence_keeps_its_own_time(
    made: dict[str, Path], worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    segments = await _segments(js, topology, job_store, made["after_silence"])

    assert segments, "the sentence after 20 s of silence was not transcribed"
    assert recall(FIRST, " ".join(s.text for s in segments)) >= 0.7
    # espeak-ng starts speaking at once: the first word is at 20 s, the padding before it is 0.2 s.
    assert 19.5 <= segments[0].start <= 20.3, segments[0]
    assert 19.7 <= segments[0].words[0].start <= 20.5, segments[0].words[0]


async def test_sentences_apart_keep_their_own_text_and_times(
    made: dict[str, Path], worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    segments = await _segments(js, topology, job_store, made["apart"])

    before = " ".join(s.text for s in segments if s.end < 10)
    after = " ".join(s.text for s in segments if s.start > 40)
    assert recall(FIRST, before) >= 0.7, segments
    assert recall(SECOND, after) >= 0.7, segments
    assert all(s.end <= 10 or s.start >= 40 for s in segments), "a segment spans the 40 s of silence"


async def test_word_times_stay_inside_their_segment_and_never_run_backwards(
    made: dict[str, Path], worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    segments = await _segments(js, topology, job_store, made["apart"])

    assert segments
    for segment in segments:
        assert segment.words
        for word, following in zip(segment.words, segment.words[1:], strict=False):
            assert word.start <= word.end <= following.start <= following.end
        assert segment.start <= segment.words[0].start and segment.words[-1].end <= segment.end


async def test_the_default_audio_track_is_transcribed_not_the_first(
    made: dict[str, Path], worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    segments = await _segments(js, topology, job_store, made["two_tracks"])

    assert recall(FIRST, " ".join(s.text for s in segments)) >= 0.7, segments


async def test_a_job_can_name_the_audio_stream(
    made: dict[str, Path], worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    assert await _segments(js, topology, job_store, made["two_tracks"], audio_stream=0) == []


async def test_an_audio_stream_the_file_lacks_fails_the_job_naming_it(
    made: dict[str, Path], worker: Worker, js: JetStreamContext, topology: Topology
) -> None:
    job_id = await submit(js, topology, made["two_tracks"], language="en", options={"audio_stream": 5})

    event = await terminal_event(js, job_id)

    assert event.type == "failed"
    assert event.job.error is not None and "no audio stream 5" in event.job.error, event.job.error


async def test_channels_in_opposite_phase_still_yield_speech(
    made: dict[str, Path], worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    segments = await _segments(js, topology, job_store, made["opposite_phase"])

    assert recall(FIRST, " ".join(s.text for s in segments)) >= 0.7, segments


async def test_voice_activity_detection_can_be_switched_off_per_job(
    made: dict[str, Path], worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    # Without VAD Whisper hears the 20 s of silence too: its first segment starts in it, where VAD's would not.
    segments = await _segments(js, topology, job_store, made["after_silence"], vad=False)

    assert segments and segments[0].start < 19.5, segments


async def test_segments_carry_whispers_measures_of_them(
    made: dict[str, Path], worker: Worker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    segments = await _segments(js, topology, job_store, made["after_silence"])

    assert segments
    for segment in segments:
        assert segment.avg_logprob is not None and -5.0 < segment.avg_logprob <= 0.0
        assert segment.no_speech_prob is not None and 0.0 <= segment.no_speech_prob <= 1.0
        assert segment.compression_ratio is not None and 0.0 < segment.compression_ratio < 2.4
        assert segment.temperature == 0.0
        assert segment.tokens and all(isinstance(token, int) for token in segment.tokens)
