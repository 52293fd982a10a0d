"""The multilingual base model: the language is identified on the speech (not on leading silence) and may be
held to a list; Chinese and Japanese get per-character words; a decoding never comes back as a loop.

The engine runs directly (one base model for the module, transcriptions shared between tests), because the
base model costs several seconds per job on the test machine's two cores.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from jetscribe.config import EngineKind
from jetscribe.stage.abort import AbortSignal
from jetscribe.stage.decode import decode_file
from schemas import DecodeOptions
from tests.engines import loaded_engine
from tests.worker import recordings
from worker.engine import DecodeRequest, Engine, Hooks, Transcription
from worker.quality import compression_ratio

GERMAN = "Guten Morgen, heute ist das Wetter sehr schön und warm."
MANDARIN = "今天天气很好，我们去公园散步吧。"
JAPANESE = "今日はとても良い天気です。公園に行きましょう。"


@pytest.fixture(scope="module")
def engine(engine_kind: EngineKind, model_cache: Path) -> Iterator[Engine]:
    with loaded_engine(engine_kind, "base", model_cache) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("languages")
    german = recordings.speech(d, "german", GERMAN, voice="de")
    return {
        "german_after_silence": recordings.joined(d, "german_after_silence", recordings.silence(d, "q35", 35), german),
        "german": german,
        "mandarin": recordings.speech(d, "mandarin", MANDARIN, voice="cmn"),
        "japanese": recordings.speech(d, "japanese", JAPANESE, voice="ja"),
    }


def _transcribe(engine: Engine, audio: Path, language: str | None, **options: object) -> Transcription:
    samples = asyncio.run(decode_file(audio, max_audio_s=600))
    request = DecodeRequest(language=language, task="transcribe", options=DecodeOptions(beam_size=1, **options))  # type: ignore[arg-type]
    hooks = Hooks(on_progress=lambda _: None, on_segment=lambda _: None, abort=AbortSignal())
    return engine.transcribe(samples, request, hooks)


@pytest.fixture(scope="module")
def german_after_silence(engine: Engine, made: dict[str, Path]) -> Transcription:
    return _transcribe(engine, made["german_after_silence"], None)


@pytest.fixture(scope="module")
def mandarin(engine: Engine, made: dict[str, Path]) -> Transcription:
    return _transcribe(engine, made["mandarin"], "zh")


@pytest.fixture(scope="module")
def japanese(engine: Engine, made: dict[str, Path]) -> Transcription:
    return _transcribe(engine, made["japanese"], "ja")


def test_the_language_is_identified_on_speech_after_long_silence(german_after_silence: Transcription) -> None:
    assert german_after_silence.language == "de"
    assert german_after_silence.language_probability is not None
    assert 0.5 < german_after_silence.language_probability <= 1.0
    text = " ".join(s.text for s in german_after_silence.segments).lower()
    assert "guten morgen" in text, text
    assert german_after_silence.segments[0].start > 34.0


def test_the_language_found_without_transcribing_is_the_one_a_transcription_reports(
    engine: Engine, made: dict[str, Path], german_after_silence: Transcription
) -> None:
    samples = asyncio.run(decode_file(made["german_after_silence"], max_audio_s=600))
    request = DecodeRequest(language=None, task="transcribe", options=DecodeOptions(beam_size=1))

    found = engine.language_of(samples, request)

    assert found == (german_after_silence.language, german_after_silence.language_probability) == ("de", found[1])


def test_detection_chooses_only_among_the_allowed_languages(engine: Engine, made: dict[str, Path]) -> None:
    found = _transcribe(engine, made["german"], None, languages=("en", "es"))

    assert found.language in {"en", "es"}
    assert found.language_probability is not None and found.language_probability < 0.5


@pytest.mark.parametrize("which", ["mandarin", "japanese"])
def test_languages_without_spaces_get_a_word_per_character(
    which: str, engine_kind: EngineKind, request: pytest.FixtureRequest
) -> None:
    found: Transcription = request.getfixturevalue(which)

    assert found.segments
    for segment in found.segments:
        assert segment.words
        # Latin text the model writes among the characters (base hears espeak's Japanese poorly) is a word per
        # token, as in Whisper's own `split_tokens_on_unicode`.
        assert all(len(word.word.strip()) <= 3 for word in segment.words if not word.word.isascii()), segment.words
        assert "".join(w.word for w in segment.words).replace(" ", "") == segment.text.replace(" ", "")
        for word, following in zip(segment.words, segment.words[1:], strict=False):
            assert segment.start <= word.start <= word.end <= following.start <= following.end <= segment.end


@pytest.mark.parametrize("which", ["mandarin", "japanese", "german_after_silence"])
def test_no_segment_is_a_repetition_loop(which: str, engine_kind: EngineKind, request: pytest.FixtureRequest) -> None:
    found: Transcription = request.getfixturevalue(which)

    for segment in found.segments:
        assert compression_ratio(segment.text) <= 2.4, segment.text
        assert segment.compression_ratio is not None and segment.compression_ratio <= 2.4
