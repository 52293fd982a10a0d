"""A worker runs a quantized whisper.cpp model as it runs an f16 one, and its heartbeat says which it loaded
(CTranslate2 quantizes at load time instead: tests/worker/test_engines.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from nats.js import JetStreamContext

from jetscribe.jobstore import JobStore
from jetscribe.models.quantize import quantize_model
from jetscribe.topology import Topology
from schemas.codec import decode_heartbeat
from tests.worker.conftest import StartWorker
from tests.worker.jobs import AUDIO, TEXTS, recall, submit, terminal_event

pytestmark = pytest.mark.engines("whispercpp")


@pytest.fixture(scope="module")
def tiny_q5_0(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return quantize_model(tiny_model, tmp_path_factory.mktemp("models") / "ggml-tiny.en-q5_0.bin", "q5_0")


async def test_heartbeat_reports_the_f16_weights_of_an_imported_model(
    start_worker: StartWorker, topology: Topology
) -> None:
    async with start_worker() as running:
        entry = await topology.workers.get(running.worker_id)

    assert decode_heartbeat(entry.value or b"").quantization == "f16"


async def test_worker_on_a_quantized_model_reports_it_and_transcribes(
    start_worker: StartWorker, js: JetStreamContext, topology: Topology, job_store: JobStore, tiny_q5_0: Path
) -> None:
    async with start_worker(whisper_model_path=tiny_q5_0) as running:
        heartbeat = decode_heartbeat((await topology.workers.get(running.worker_id)).value or b"")
        event = await terminal_event(js, await submit(js, topology, AUDIO / "en1.wav", language="en"))

    assert (heartbeat.model, heartbeat.quantization) == ("tiny.en-q5_0", "q5_0")
    assert event.type == "completed"
    assert event.job.model == "tiny.en-q5_0"
    segments = await job_store.get_transcript(event.transcript_object or "")
    assert recall(TEXTS["en1"], " ".join(s.text for s in segments)) >= 0.8
