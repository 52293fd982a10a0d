"""Both engines behind one contract: a worker says which engine runs each model and jobs record it; the CTranslate2
engine batches a job's chunks without losing progress, order or cancel; bad engine set-ups are refused in words."""

from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec
import pytest
from nats.js import JetStreamContext

from jetscribe.config import EngineKind, Settings
from jetscribe.errors import ModelError
from jetscribe.jobstore import JobStore
from jetscribe.models.ct2store import resolve_ct2_model
from jetscribe.stage.abort import AbortSignal
from jetscribe.stage.decode import Samples, decode_file
from jetscribe.stage.errors import JobAbortedError
from jetscribe.topology import Topology
from schemas import DecodeOptions, Segment
from schemas.codec import decode_heartbeat
from tests.engines import loaded_engine, model_path
from tests.worker.conftest import StartWorker
from tests.worker.jobs import AUDIO, TEXTS, recall, submit, terminal_event
from worker.engine import DecodeRequest, Hooks, engine_spec

REQUEST = DecodeRequest(language="en", task="transcribe", options=DecodeOptions(beam_size=1))
HOOKS = Hooks(on_progress=lambda _: None, on_segment=lambda _: None, abort=AbortSignal())


@pytest.fixture(scope="module")
def minute() -> Samples:
    return asyncio.run(decode_file(AUDIO / "long60.ogg", max_audio_s=120))


async def test_the_heartbeat_and_the_job_record_name_the_engine_and_its_compute_type(
    engine_kind: EngineKind, start_worker: StartWorker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    async with start_worker() as running:
        heartbeat = decode_heartbeat((await topology.workers.get(running.worker_id)).value or b"")
        event = await terminal_event(js, await submit(js, topology, AUDIO / "en1.wav"))

    served = heartbeat.models[0]
    record = (await job_store.require(event.job.id)).record
    expected = ("int8", "int8") if engine_kind == "ctranslate2" else (None, "f16")
    assert (served.engine, served.compute_type, served.quantization) == (engine_kind, *expected)
    assert (record.engine, record.compute_type) == (engine_kind, expected[0])
    assert (event.job.engine, event.job.compute_type) == (engine_kind, expected[0])


@pytest.mark.engines("ctranslate2")
async def test_a_worker_runs_each_model_on_the_engine_named_for_it(
    engine_kind: EngineKind, start_worker: StartWorker, topology: Topology
) -> None:
    async with start_worker(whisper_model="tiny.en,base", model_engines=("base=whispercpp",)) as running:
        heartbeat = decode_heartbeat((await topology.workers.get(running.worker_id)).value or b"")

    assert {m.name: m.engine for m in heartbeat.models} == {"tiny.en": "ctranslate2", "base": "whispercpp"}


@pytest.mark.engines("ctranslate2")
async def test_a_batched_worker_transcribes_a_long_job_with_progress_in_order(
    engine_kind: EngineKind, start_worker: StartWorker, js: JetStreamContext, topology: Topology, job_store: JobStore
) -> None:
    async with start_worker(batch_size=4) as running:
        heartbeat = decode_heartbeat((await topology.workers.get(running.worker_id)).value or b"")
        event = await terminal_event(js, await submit(js, topology, AUDIO / "long60.ogg", language="en"))

    assert heartbeat.models[0].batch_size == 4
    assert event.type == "completed", event.job.error
    segments = await job_store.get_transcript(event.transcript_object or "")
    assert [s.index for s in segments] == list(range(len(segments)))
    assert all(a.start <= b.start for a, b in itertools.pairwise(segments))
    assert segments[-1].end > 50


@pytest.mark.engines("ctranslate2")
def test_batched_decoding_reports_segments_and_progress_as_each_batch_ends(
    engine_kind: EngineKind, model_cache: Path, minute: Samples
) -> None:
    found: list[Segment] = []
    progress: list[int] = []
    hooks = Hooks(on_progress=progress.append, on_segment=found.append, abort=AbortSignal())
    with loaded_engine(engine_kind, "tiny.en", model_cache, batch_size=2) as engine:
        transcription = engine.transcribe(minute, REQUEST, hooks)

    assert recall(TEXTS["long60"], " ".join(s.text for s in transcription.segments)) >= 0.8
    assert [s.text for s in found] == [s.text for s in transcription.segments]
    assert progress == sorted(progress) and progress[-1] >= 95


@pytest.mark.engines("ctranslate2")
def test_batched_decoding_loses_no_speech_where_whisper_ends_a_window_early(
    engine_kind: EngineKind, model_cache: Path, minute: Samples
) -> None:
    # A minute of continuous speech without VAD: three fixed 30 s chunks. tiny.en ends the first chunk's text at
    # 28.7 s, mid-sentence ("I like to make soup…"); without time stamps it skipped most of the second chunk.
    request = DecodeRequest(language="en", task="transcribe", options=DecodeOptions(), vad=False)
    with loaded_engine(engine_kind, "tiny.en", model_cache, batch_size=4) as engine:
        heard = " ".join(s.text for s in engine.transcribe(minute, request, HOOKS).segments)

    assert recall(TEXTS["long60"], heard) >= 0.95, heard
    assert "like to make" in heard, heard


@pytest.mark.engines("ctranslate2")
def test_batched_and_sequential_decoding_hear_the_same_words(
    engine_kind: EngineKind, model_cache: Path, minute: Samples
) -> None:
    hooks = Hooks(on_progress=lambda _: None, on_segment=lambda _: None, abort=AbortSignal())
    with loaded_engine(engine_kind, "tiny.en", model_cache) as engine:
        sequential = " ".join(s.text for s in engine.transcribe(minute, REQUEST, hooks).segments)
    with loaded_engine(engine_kind, "tiny.en", model_cache, batch_size=4) as engine:
        batched = " ".join(s.text for s in engine.transcribe(minute, REQUEST, hooks).segments)

    assert recall(sequential, batched) >= 0.9


@pytest.mark.engines("ctranslate2")
def test_the_slots_of_a_batched_model_put_their_jobs_chunks_in_one_batch(
    engine_kind: EngineKind, model_cache: Path, minute: Samples, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="worker.batching")
    hooks = Hooks(on_progress=lambda _: None, on_segment=lambda _: None, abort=AbortSignal())
    # Each job has three chunks: while the first job's first batch (two of them) runs, the second job's arrive.
    with loaded_engine(engine_kind, "tiny.en", model_cache, batch_size=2) as first, first.sibling() as second:
        with ThreadPoolExecutor(2) as pool:
            jobs = [pool.submit(engine.transcribe, minute, REQUEST, hooks) for engine in (first, second)]
            transcripts = [" ".join(s.text for s in job.result().segments) for job in jobs]

    assert transcripts[0] == transcripts[1]
    assert any("from 2 jobs" in record.getMessage() for record in caplog.records)


@pytest.mark.engines("ctranslate2")
def test_an_abort_stops_a_batched_transcription_at_the_next_batch(
    engine_kind: EngineKind, model_cache: Path, minute: Samples
) -> None:
    abort = AbortSignal()
    found: list[Segment] = []

    def on_segment(segment: Segment) -> None:
        found.append(segment)
        abort.trigger("cancelled")

    with loaded_engine(engine_kind, "tiny.en", model_cache, batch_size=2) as engine:
        with pytest.raises(JobAbortedError):
            engine.transcribe(minute, REQUEST, Hooks(on_progress=lambda _: None, on_segment=on_segment, abort=abort))

    assert len(found) == 1


@pytest.mark.engines("ctranslate2")
def test_a_compute_type_the_device_lacks_is_refused_naming_the_ones_it_has(
    engine_kind: EngineKind, model_cache: Path
) -> None:
    with pytest.raises(ModelError, match=r"JETSCRIBE_COMPUTE_TYPE=float16 is not supported on this CPU .*int8"):
        loaded_engine(engine_kind, "tiny.en", model_cache, compute_type="float16")


@pytest.mark.engines("ctranslate2")
def test_a_ggml_file_given_to_the_ctranslate2_engine_is_refused_saying_which_engine_loads_it(
    engine_kind: EngineKind, model_cache: Path
) -> None:
    ggml = model_path("whispercpp", "tiny.en", model_cache)

    with pytest.raises(ModelError, match="a GGML file needs JETSCRIBE_ENGINE=whispercpp"):
        resolve_ct2_model("tiny.en", model_cache, ggml)


def test_a_directory_whose_weights_are_not_a_ctranslate2_model_is_refused_before_loading(tmp_path: Path) -> None:
    for name, content in (
        ("model.bin", b"\x67\x67\x6d\x6c" + bytes(60)),
        ("config.json", b"{}"),
        ("tokenizer.json", b"{}"),
    ):
        (tmp_path / name).write_bytes(content)

    with pytest.raises(ModelError, match=r"model.bin is not a CTranslate2 Whisper model: unsupported .* version"):
        resolve_ct2_model("mine", tmp_path, tmp_path)


@pytest.mark.engines("ctranslate2")
def test_a_compute_type_the_device_lacks_stops_the_start_before_any_worker_runs(
    engine_kind: EngineKind, settings: Settings
) -> None:
    with pytest.raises(ModelError, match="set JETSCRIBE_COMPUTE_TYPE=auto"):
        engine_spec(msgspec.structs.replace(settings, compute_type="float16"), "tiny.en")


def test_a_damaged_assembled_model_is_refused_before_ctranslate2_reads_it(model_cache: Path, tmp_path: Path) -> None:
    shutil.copytree(resolve_ct2_model("base", model_cache), tmp_path / "ctranslate2" / "base")
    with (tmp_path / "ctranslate2" / "base" / "model.bin").open("r+b") as weights:
        weights.seek(1000)
        weights.write(b"\x00\x01\x02\x03")

    with pytest.raises(ModelError, match=r"does not match its pinned SHA-256.*it is assembled again"):
        resolve_ct2_model("base", tmp_path)


def test_a_model_no_package_carries_says_where_to_put_a_ctranslate2_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no CTranslate2 model 'small'.*ctranslate2/small"):
        resolve_ct2_model("small", tmp_path)


def test_a_quantized_whispercpp_model_name_points_to_the_compute_type(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="choose JETSCRIBE_COMPUTE_TYPE"):
        resolve_ct2_model("base-q8_0", tmp_path)


@pytest.fixture(scope="module")
def sentence() -> Samples:
    return asyncio.run(decode_file(AUDIO / "en2.wav", max_audio_s=60))


def test_no_segment_or_word_ends_after_the_audio(engine_kind: EngineKind, model_cache: Path, sentence: Samples) -> None:
    samples = sentence
    request = DecodeRequest("en", "transcribe", DecodeOptions(initial_prompt="OFFICE", word_timestamps=False))
    with loaded_engine(engine_kind, "tiny.en", model_cache) as engine:
        found = engine.transcribe(samples, request, HOOKS)

    duration = samples.size / 16_000
    assert found.segments
    assert all(s.end <= duration + 1e-3 and all(w.end <= duration + 1e-3 for w in s.words) for s in found.segments)
