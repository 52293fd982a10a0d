"""The wire contract: strict decoding with readable errors, lossless round trips, JSON Schema for everything."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cli.main import main
from schemas import (
    CancelRequest,
    DecodeOptions,
    DeviceInfo,
    DiarizationMessage,
    DiarizerHeartbeat,
    InvalidJobNotice,
    Job,
    JobMessage,
    JobRecord,
    ProgressEvent,
    SchemaError,
    Segment,
    SegmentEvent,
    TerminalEvent,
    WebhookState,
    Word,
    WorkerHeartbeat,
    encode,
)
from schemas.codec import (
    decode_cancel,
    decode_diarization_message,
    decode_diarizer_heartbeat,
    decode_heartbeat,
    decode_idempotency_record,
    decode_invalid_notice,
    decode_job,
    decode_job_message,
    decode_list_entry,
    decode_list_place,
    decode_live_event,
    decode_record,
    decode_segments,
    decode_terminal_event,
)
from schemas.export import API_BODIES, MESSAGES, bundle, json_schemas
from schemas.joblist import JobListEntry, JobListPlace
from schemas.state import IdempotencyRecord

COMMITTED_BUNDLE = Path(__file__).parents[2] / "docs" / "schemas" / "jetscribe.schema.json"
NOW = datetime(2026, 11, 24, 4, 30, 15, 250000, tzinfo=UTC)
SEGMENT = Segment(
    index=0,
    start=0.0,
    end=2.18,
    text="The children are playing in the garden.",
    words=[Word(start=0.0, end=0.31, word="The", probability=0.97)],
)
JOB = Job(
    id="job-1",
    status="done",
    language="en",
    task="transcribe",
    duration_secs=2.18,
    progress=100,
    segments=[SEGMENT],
    created_at=NOW,
    completed_at=NOW,
    started_at=NOW,
    model="tiny.en",
    webhook=WebhookState(url="https://example.com/hook", attempts=1, last_status=200, delivered_at=NOW),
)
EXAMPLES: dict[type[msgspec.Struct], tuple[msgspec.Struct, Callable[[bytes], Any]]] = {
    JobMessage: (
        JobMessage(
            job_id="job-1",
            audio_object="job-1",
            language="de",
            task="translate",
            webhook_url="https://example.com/hook",
            options=DecodeOptions(beam_size=3, temperature=0.2, initial_prompt="Müller, Köln"),
            submitted_at=NOW,
        ),
        decode_job_message,
    ),
    DiarizationMessage: (
        DiarizationMessage(
            job=JobMessage(
                job_id="job-1",
                audio_object="job-1",
                options=DecodeOptions(diarize=True, min_speakers=2, max_speakers=4),
                tenant="acme",
            ),
            transcript_object="job-1.json",
        ),
        decode_diarization_message,
    ),
    Job: (JOB, decode_job),
    JobRecord: (
        JobRecord(
            id="job-1",
            status="running",
            task="transcribe",
            language=None,
            audio_url="https://example.com/a.mp3",
            detected_language="en",
            created_at=NOW,
            started_at=NOW,
            worker_id="w1",
            attempts=2,
        ),
        decode_record,
    ),
    ProgressEvent: (ProgressEvent(job_id="job-1", seq=3, percent=42, stage="transcribing"), decode_live_event),
    SegmentEvent: (SegmentEvent(job_id="job-1", seq=4, segment=SEGMENT), decode_live_event),
    TerminalEvent: (
        TerminalEvent(type="completed", job=JOB, transcript_object="job-1.json", occurred_at=NOW),
        decode_terminal_event,
    ),
    CancelRequest: (CancelRequest(job_id="job-1", requested_at=NOW), decode_cancel),
    InvalidJobNotice: (
        InvalidJobNotice(job_id=None, reason="not JSON", payload="{oops", received_at=NOW),
        decode_invalid_notice,
    ),
    WorkerHeartbeat: (
        WorkerHeartbeat(
            worker_id="w1",
            host="gpu-1",
            pid=4242,
            model="base",
            quantization="q8_0",
            device=DeviceInfo(kind="cuda", name="NVIDIA H100", memory_used_bytes=1 << 30, memory_total_bytes=80 << 30),
            slots=2,
            current_jobs=["job-1"],
            jobs_done=17,
            started_at=NOW,
            uptime_s=12.5,
            sent_at=NOW,
        ),
        decode_heartbeat,
    ),
    DiarizerHeartbeat: (
        DiarizerHeartbeat(
            worker_id="cpu-1-77-abc123-diarizer",
            host="cpu-1",
            pid=77,
            encoder="resemblyzer-ge2e-0.1.4",
            current_jobs=["job-1"],
            jobs_done=3,
            started_at=NOW,
            uptime_s=40.0,
            sent_at=NOW,
        ),
        decode_diarizer_heartbeat,
    ),
    JobListEntry: (JobListEntry(job_id="job-1"), decode_list_entry),
    JobListPlace: (
        JobListPlace(tenant="default", submitted_seq=7, status="running", status_seq=12, revision=3),
        decode_list_place,
    ),
    IdempotencyRecord: (
        IdempotencyRecord(state="done", fingerprint="ab" * 32, job_id="job-1", created_at=NOW),
        decode_idempotency_record,
    ),
}
VALID_JOB: dict[str, Any] = {"job_id": "job-1", "audio_object": "job-1"}


def job_message(**changes: Any) -> bytes:
    fields = {**VALID_JOB, **changes}
    return json.dumps({k: v for k, v in fields.items() if v is not None}).encode()


def test_every_message_has_a_round_trip_example() -> None:
    assert set(EXAMPLES) == set(MESSAGES)


@pytest.mark.parametrize("message_type", MESSAGES, ids=lambda t: t.__name__)
def test_every_message_survives_encode_and_decode(message_type: type[msgspec.Struct]) -> None:
    message, decode = EXAMPLES[message_type]

    assert decode(encode(message)) == message


def test_a_transcript_survives_encode_and_decode() -> None:
    assert decode_segments(encode([SEGMENT, SEGMENT])) == [SEGMENT, SEGMENT]


def test_a_minimal_job_message_gets_the_service_defaults() -> None:
    message = decode_job_message(job_message())

    assert message.language is None
    assert message.task == "transcribe"
    assert message.options == DecodeOptions(beam_size=5, temperature=0.0, word_timestamps=True)
    assert message.schema_version == 1


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (job_message(priority="high"), "invalid job message: Object contains unknown field `priority`"),
        (json.dumps({"audio_object": "a"}).encode(), "invalid job message: Object missing required field `job_id`"),
        (job_message(job_id="has space"), "at `$.job_id`"),
        (job_message(job_id="x" * 65), "at `$.job_id`"),
        (job_message(audio_url="https://example.com/a.wav"), "exactly one of `audio_object` and `audio_url`"),
        (job_message(audio_object=None), "exactly one of `audio_object` and `audio_url`"),
        (job_message(language="klingon"), "language 'klingon' is not one Whisper knows"),
        (job_message(task="summarise"), "Invalid enum value 'summarise' - at `$.task`"),
        (job_message(audio_object=None, audio_url="ftp://example.com/a.wav"), "at `$.audio_url`"),
        (job_message(options={"beam_size": 0}), "Expected `int` >= 1 - at `$.options.beam_size`"),
        (job_message(options={"best_of": 2}), "unknown field `best_of` - at `$.options`"),
        (job_message(schema_version=2), "schema_version 2 is not supported; this service understands 1"),
        (b"{not json", "job message is not valid JSON"),
    ],
    ids=[
        "unknown field",
        "missing field",
        "job id with a space",
        "job id too long",
        "both audio sources",
        "no audio source",
        "unknown language",
        "unknown task",
        "non-http url",
        "beam size 0",
        "unknown option",
        "future schema version",
        "not json",
    ],
)
def test_an_invalid_job_message_is_a_readable_schema_error(payload: bytes, expected: str) -> None:
    with pytest.raises(SchemaError) as caught:
        decode_job_message(payload)

    assert expected in str(caught.value)


def test_a_cancel_request_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(SchemaError, match="invalid cancel request: Object contains unknown field `reason`"):
        decode_cancel(b'{"job_id": "j", "requested_at": "2026-11-24T04:30:00Z", "reason": "bored"}')


def test_a_progress_event_of_an_unknown_type_is_refused() -> None:
    with pytest.raises(SchemaError, match="invalid progress event"):
        decode_live_event(b'{"type": "gossip", "job_id": "j", "seq": 1}')


def test_json_schema_covers_every_message_and_api_body() -> None:
    schemas, components = json_schemas()
    types = {t.__name__ for t in MESSAGES + API_BODIES}

    assert set(schemas) == types
    assert types <= set(bundle()["$defs"])
    assert set(components["JobMessage"]["required"]) == {"job_id"}
    assert components["JobMessage"]["additionalProperties"] is False


def test_the_committed_schema_bundle_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    generated = capsys.readouterr().out

    assert COMMITTED_BUNDLE.read_text() == generated, (
        f"{COMMITTED_BUNDLE} is stale: regenerate it with `jetscribe schema > docs/schemas/jetscribe.schema.json`"
    )
