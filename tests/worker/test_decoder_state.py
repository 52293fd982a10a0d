"""What a model ran before never changes a job's transcript, on either engine.

whisper.cpp keeps decoder state on a context from one `whisper_full` call to the next (the first decoder's random
generator, used once a window falls back to sampling); with beam search on tiny.en the same clip came back as
"Hello World! This is a short test on the Trunk Ripch & Service." alone and "The low world is in a short test on the
transcription service." after another clip, until each job decoded on a state of its own (worker/whisperlib.py,
`DecoderState`). CTranslate2 keeps no decoder state between calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from jetscribe.config import EngineKind
from jetscribe.stage.abort import AbortSignal
from jetscribe.stage.decode import Samples, decode_file
from schemas import DecodeOptions, Segment
from tests.engines import loaded_engine
from worker.engine import DecodeRequest, Engine, Hooks

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "audio"
HOOKS = Hooks(on_progress=lambda _: None, on_segment=lambda _: None, abort=AbortSignal())


@pytest.fixture(scope="module")
def engine(engine_kind: EngineKind, model_cache: Path) -> Iterator[Engine]:
    with loaded_engine(engine_kind, "tiny.en", model_cache) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def first() -> Samples:
    return asyncio.run(decode_file(FIXTURES / "en1.wav", max_audio_s=60))


@pytest.fixture(scope="module")
def other() -> Samples:
    return asyncio.run(decode_file(FIXTURES / "en2.wav", max_audio_s=60))


def transcript(engine: Engine, samples: Samples, **options: object) -> list[Segment]:
    request = DecodeRequest(language="en", task="transcribe", options=DecodeOptions(**options))  # type: ignore[arg-type]
    return engine.transcribe(samples, request, HOOKS).segments


@pytest.mark.parametrize("beam_size", [5, 1])
def test_the_same_audio_decodes_the_same_whatever_the_model_ran_before(
    engine: Engine, first: Samples, other: Samples, beam_size: int
) -> None:
    alone = transcript(engine, first, beam_size=beam_size)
    runs = []
    for _ in range(2):
        transcript(engine, other, beam_size=beam_size)
        runs.append(transcript(engine, first, beam_size=beam_size))

    assert alone
    assert runs == [alone, alone]


def test_a_job_decoding_at_a_raised_temperature_leaves_the_next_job_unchanged(
    engine: Engine, first: Samples, other: Samples
) -> None:
    alone = transcript(engine, first)
    transcript(engine, other, temperature=1.0)

    assert transcript(engine, first) == alone
