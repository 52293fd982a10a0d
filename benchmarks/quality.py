"""Transcript quality with voice activity detection off and on, side by side: word error rate, invented words on
audio without speech, language identification, where the first word after silence starts, and whisper time
saved on audio with long pauses; then a few VAD padding and minimum-silence values.

    .venv/bin/python -m benchmarks.quality [--threads 2] [--no-compare] [--no-sweep] [--sweep-models tiny.en base]

Every clip is made here: the committed English fixtures (tests/fixtures/audio, reference texts in texts.json)
and espeak-ng recordings built with the tests' own builders (tests/worker/recordings.py): two sentences each in
German, Spanish and French, 10 s of silence, of quiet white noise and of music-like tones, en1 after 20 s of
silence, the first German, Spanish and French sentences after 35 s of silence, en2/en4/en6 with short pauses
(0.6 s, 1.2 s) and en1/en3/en5 20 s apart. Decoding is a worker's (the whisper.cpp engine built from the service's
settings as `benchmarks.plain` builds it, the default job options: beam 5, temperature fallback, word timestamps),
tiny.en and base loaded once in this process; for each clip the VAD-off and VAD-on runs follow each other, in
alternating order, so drift in machine load hits both alike.

- Word error rate: all errors over all reference words, both sides through Whisper's English normaliser
  (`whisper-normalizer`, the rules of OpenAI's `EnglishTextNormalizer`), or its basic normaliser for the other
  languages, scored with `jiwer`; the language is given.
- Invented words per minute: words in the transcript of audio without speech, per minute of that audio
  (language given as English: without it, the base model spends minutes on silence, see
  ../shared/notes/vad-diarization.md).
- Language identification: the `language` a job with none given would report (`Engine.language_of`: the
  same speech finding and identification as a transcription, without transcribing) against the spoken one (base).
- First-word start error: the first word's (and first segment's) start against where the speech begins, found
  as the first sample louder than -34 dBFS in the espeak-ng clip.
- Whisper time: wall and CPU seconds of the whole transcription (VAD included) on the clip with long pauses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from benchmarks.plain import engine_env
from benchmarks.report import machine
from jetscribe.config import Settings
from jetscribe.stage.abort import AbortSignal
from jetscribe.stage.decode import SAMPLE_RATE, Samples, decode_file
from schemas import DecodeOptions, Segment
from tests.worker import recordings
from worker.engine import DecodeRequest, Engine, Hooks, Transcription, build_engine, engine_spec

FIXTURES: Final = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "audio"
TEXTS: Final[dict[str, str]] = json.loads((FIXTURES / "texts.json").read_text())
ENGLISH: Final = [f"en{i}" for i in range(1, 7)]
SPOKEN: Final = {
    "de": [
        "Guten Morgen, heute ist das Wetter sehr schön und warm.",
        "Ich fahre jeden Tag mit dem Fahrrad zur Arbeit.",
    ],
    "es": ["Buenos días, hoy hace muy buen tiempo en la ciudad.", "Mi hermana trabaja en un hospital cerca del mar."],
    "fr": ["Bonjour, aujourd'hui il fait très beau dans la ville.", "Nous allons au marché tous les samedis matin."],
}
"""Two sentences per language, spoken by espeak-ng's voice of that name."""
ONSET_LEVEL: Final = 0.02
"""-34 dBFS: louder than espeak-ng's leading silence (digital zero), quieter than any of its phonemes."""
NO_SPEECH_S: Final = 10.0
AFTER_S: Final = 20.0
LANGUAGE_AFTER_S: Final = 35.0
PAUSE_S: Final = 20.0
PAUSED: Final = f"en1, en3, en5 {PAUSE_S:g} s apart"
GAPS_S: Final = (0.6, 1.2)
CLOSE: Final = f"en2, en4, en6 {GAPS_S[0]:g} s and {GAPS_S[1]:g} s apart"
PAD_MS: Final = (30, 200, 400)
MIN_SILENCE_MS: Final = (100, 500, 1000)
MODELS: Final = ("tiny.en", "base")


@dataclass(frozen=True, slots=True)
class Clip:
    name: str
    samples: Samples
    text: str = ""
    language: str = "en"
    onset_s: float | None = None
    """Where the speech begins, for the first-word start error."""


@dataclass
class Run:
    """One transcription and its cost."""

    found: Transcription
    wall_s: float
    cpu_s: float

    @property
    def text(self) -> str:
        return " ".join(segment.text for segment in self.found.segments)


def load(path: Path) -> Samples:
    return asyncio.run(decode_file(path, max_audio_s=3600))


def onset(samples: Samples) -> float:
    loud = np.flatnonzero(np.abs(samples) > ONSET_LEVEL)
    return float(loud[0]) / SAMPLE_RATE if loud.size else 0.0


def make_clips(d: Path) -> dict[str, list[Clip]]:
    """Every clip of the benchmark, by what it measures."""
    english = [Clip(k, load(FIXTURES / f"{k}.wav"), TEXTS[k]) for k in ENGLISH]
    spoken_files = {
        (language, i): recordings.speech(d, f"{language}{i + 1}", text, voice=language)
        for language, texts in SPOKEN.items()
        for i, text in enumerate(texts)
    }
    spoken = [Clip(f"{lang}{i + 1}", load(path), SPOKEN[lang][i], lang) for (lang, i), path in spoken_files.items()]
    quiet = {s: recordings.silence(d, f"quiet{s:g}", s) for s in (AFTER_S, LANGUAGE_AFTER_S, PAUSE_S, *GAPS_S)}
    fixture = {k: FIXTURES / f"{k}.wav" for k in ENGLISH}
    late = [
        Clip(
            f"{language} after {LANGUAGE_AFTER_S:g} s of silence",
            load(recordings.joined(d, f"late_{language}", quiet[LANGUAGE_AFTER_S], spoken_files[(language, 0)])),
            SPOKEN[language][0],
            language,
        )
        for language in SPOKEN
    ]
    after = recordings.joined(d, "after", quiet[AFTER_S], fixture["en1"])
    paused = recordings.joined(
        d, "paused", fixture["en1"], quiet[PAUSE_S], fixture["en3"], quiet[PAUSE_S], fixture["en5"]
    )
    close = recordings.joined(
        d, "close", fixture["en2"], quiet[GAPS_S[0]], fixture["en4"], quiet[GAPS_S[1]], fixture["en6"]
    )
    return {
        "english": english,
        "other": spoken,
        "identify": [english[0], english[1], *spoken, *late],
        "no_speech": [
            Clip("silence", load(recordings.silence(d, "silence", NO_SPEECH_S))),
            Clip("white noise (amplitude 0.05)", load(recordings.noise(d, "noise", NO_SPEECH_S))),
            Clip("music-like tones", load(recordings.tones(d, "tones", NO_SPEECH_S))),
        ],
        "after": [
            Clip(
                f"en1 after {AFTER_S:g} s of silence",
                load(after),
                TEXTS["en1"],
                onset_s=AFTER_S + onset(load(fixture["en1"])),
            )
        ],
        "paused": [Clip(PAUSED, load(paused), " ".join(TEXTS[k] for k in ("en1", "en3", "en5")))],
        "close": [Clip(CLOSE, load(close), " ".join(TEXTS[k] for k in ("en2", "en4", "en6")))],
    }


class Bench:
    def __init__(self, engines: dict[str, Engine]) -> None:
        self.engines = engines
        self._flip = False
        self._hooks = Hooks(on_progress=lambda _: None, on_segment=lambda _: None, abort=AbortSignal())

    def run(self, model: str, clip: Clip, *, vad: bool, language: str | None, **options: object) -> Run:
        request = DecodeRequest(language=language, task="transcribe", options=DecodeOptions(**options), vad=vad)  # type: ignore[arg-type]
        wall, cpu = time.perf_counter(), time.process_time()
        found = self.engines[model].transcribe(clip.samples, request, self._hooks)
        return Run(found, time.perf_counter() - wall, time.process_time() - cpu)

    def languages(self, clip: Clip) -> tuple[str | None, str | None]:
        """The language base would report for `clip` (none given), VAD off and on (`Engine.language_of`)."""
        found = []
        for vad in (False, True):
            request = DecodeRequest(language=None, task="transcribe", options=DecodeOptions(), vad=vad)
            found.append(self.engines["base"].language_of(clip.samples, request)[0])
        return found[0], found[1]

    def pair(self, model: str, clip: Clip, *, language: str | None, **options: object) -> tuple[Run, Run]:
        """(VAD off, VAD on) for one clip, the order alternating from clip to clip."""
        self._flip = not self._flip
        if self._flip:
            off = self.run(model, clip, vad=False, language=language, **options)
            on = self.run(model, clip, vad=True, language=language, **options)
        else:
            on = self.run(model, clip, vad=True, language=language, **options)
            off = self.run(model, clip, vad=False, language=language, **options)
        return off, on


def wer(clips: Sequence[Clip], texts: Sequence[str]) -> float:
    import jiwer
    from whisper_normalizer.basic import BasicTextNormalizer
    from whisper_normalizer.english import EnglishTextNormalizer

    english, basic = EnglishTextNormalizer(), BasicTextNormalizer()
    pairs = [
        ((english if c.language == "en" else basic)(c.text), (english if c.language == "en" else basic)(t))
        for c, t in zip(clips, texts, strict=True)
    ]
    return float(jiwer.wer([r for r, _ in pairs], [h for _, h in pairs]))


def words_per_minute(run: Run, clip: Clip) -> float:
    return len(run.text.split()) / (clip.samples.size / SAMPLE_RATE / 60)


def first_word_error(found: Transcription, onset_s: float) -> tuple[str, str]:
    """(first word's, first segment's) start minus the speech onset, in ms; '—' when there is no segment."""
    segments: list[Segment] = found.segments
    if not segments:
        return "—", "—"
    word = segments[0].words[0].start if segments[0].words else segments[0].start
    return f"{1000 * (word - onset_s):+.0f} ms", f"{1000 * (segments[0].start - onset_s):+.0f} ms"


class SideBySide:
    """A Markdown table of (measure, VAD off, VAD on), printed row by row as the figures come."""

    def __init__(self, title: str) -> None:
        print(f"\n### {title}\n\n| measure | VAD off | VAD on |\n|---|---|---|", flush=True)

    def row(self, measure: str, off: str, on: str) -> None:
        print(f"| {measure} | {off} | {on} |", flush=True)


def compare(bench: Bench, clips: dict[str, list[Clip]]) -> None:
    table = SideBySide("VAD off against on (default options)")
    for model in bench.engines:
        for group, label in (("english", "English fixtures en1–en6"), ("close", CLOSE), ("paused", PAUSED)):
            pairs = [bench.pair(model, c, language="en") for c in clips[group]]
            table.row(
                f"{model}: WER, {label}",
                *(f"{100 * wer(clips[group], [p[i].text for p in pairs]):.1f} %" for i in (0, 1)),
            )
        if model == "base":
            pairs = [bench.pair(model, c, language=c.language) for c in clips["other"]]
            for language in SPOKEN:
                chosen = [(c, p) for c, p in zip(clips["other"], pairs, strict=True) if c.language == language]
                table.row(
                    f"base: WER, {language} (espeak-ng, 2 sentences, language given)",
                    *(f"{100 * wer([c for c, _ in chosen], [p[i].text for _, p in chosen]):.1f} %" for i in (0, 1)),
                )
        for clip in clips["no_speech"]:
            pair = bench.pair(model, clip, language="en")
            table.row(
                f"{model}: invented words per minute, {NO_SPEECH_S:g} s of {clip.name}",
                *(f"{words_per_minute(pair[i], clip):.0f} {pair[i].text[:40]!r}" for i in (0, 1)),
            )
        (clip,) = clips["after"]
        assert clip.onset_s is not None
        off, on = bench.pair(model, clip, language="en")
        errors = [first_word_error(r.found, clip.onset_s) for r in (off, on)]
        table.row(f"{model}: first word start error, {clip.name}", errors[0][0], errors[1][0])
        table.row(f"{model}: first segment start error, {clip.name}", errors[0][1], errors[1][1])
        (clip,) = clips["paused"]
        off, on = bench.pair(model, clip, language="en")
        audio_s = clip.samples.size / SAMPLE_RATE
        table.row(
            f"{model}: whisper wall time (CPU time), {PAUSED}: {audio_s:.0f} s, "
            f"{on.found.speech_secs:.1f} s of it speech",
            f"{off.wall_s:.1f} s ({off.cpu_s:.1f} s)",
            f"{on.wall_s:.1f} s ({on.cpu_s:.1f} s)",
        )
    identified = [bench.languages(c) for c in clips["identify"]]
    for late in (False, True):
        detected = [(c, p) for c, p in zip(clips["identify"], identified, strict=True) if ("after" in c.name) == late]
        label = f"after {LANGUAGE_AFTER_S:g} s of silence" if late else "speech from the start"
        right = [sum(p[i] == c.language for c, p in detected) for i in (0, 1)]
        found = [", ".join(str(p[i]) for _, p in detected) for i in (0, 1)]
        table.row(
            f"base: language identified, {label} ({len(detected)} clips)",
            *(f"{right[i]}/{len(detected)} ({found[i]})" for i in (0, 1)),
        )


def sweep(bench: Bench, clips: dict[str, list[Clip]], models: Sequence[str]) -> None:
    """VAD on, one parameter varied at a time around the defaults."""
    configs = [(pad, 500) for pad in PAD_MS] + [(200, silence) for silence in MIN_SILENCE_MS if silence != 500]
    speechy = [*clips["english"], *clips["close"], *clips["paused"]]
    (after,) = clips["after"]
    assert after.onset_s is not None
    noise = clips["no_speech"][1]
    print("\n### VAD speech padding and minimum silence (VAD on, default options otherwise)\n")
    print(
        f"| model | padding | min silence | WER (en1–en6, {CLOSE}, {PAUSED}) | first word start error after silence "
        f"| speech kept of {CLOSE} | invented words/min, noise |"
    )
    print("|---|---|---|---|---|---|---|", flush=True)
    for model in models:
        for pad, silence in configs:
            options: dict[str, object] = {"vad_speech_pad_ms": pad, "vad_min_silence_ms": silence}
            runs = [bench.run(model, c, vad=True, language="en", **options) for c in speechy]
            first = bench.run(model, after, vad=True, language="en", **options)
            invented = bench.run(model, noise, vad=True, language="en", **options)
            close = runs[len(clips["english"])]
            kept = f"{close.found.speech_secs:.1f} of {close.found.duration_secs:.1f} s"
            error = 100 * wer(speechy, [r.text for r in runs])
            start = first_word_error(first.found, after.onset_s)[0]
            invented_wpm = words_per_minute(invented, noise)
            print(
                f"| {model} | {pad} ms | {silence} ms | {error:.1f} % | {start} | {kept} | {invented_wpm:.0f} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-compare", action="store_true", help="skip VAD off against on")
    parser.add_argument("--no-sweep", action="store_true", help="skip the VAD padding / minimum silence sweep")
    parser.add_argument("--sweep-models", nargs="+", default=list(MODELS), choices=MODELS)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_clips(Path(tmp))
    settings = Settings.from_env(engine_env(",".join(MODELS), threads=args.threads))
    engines = {name: build_engine(engine_spec(settings, name)) for name in MODELS}
    try:
        bench = Bench(engines)
        print("\n## Transcript quality: voice activity detection off and on\n")
        print(f"machine: {machine()}; {args.threads} whisper threads\n")
        if not args.no_compare:
            compare(bench, clips)
        if not args.no_sweep:
            sweep(bench, clips, args.sweep_models)
    finally:
        for engine in engines.values():
            engine.close()
    print(f"\n(whole run: {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
