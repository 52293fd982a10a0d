"""Synthetic conversations for diarization tests and benchmarks: espeak-ng voices taking turns, with the truth.

Each turn is one espeak-ng utterance in one voice, resampled to 16 kHz by ffmpeg and trimmed of espeak's leading
and trailing silence, so the truth (who speaks from when to when) is exact to 10 ms. Turns are joined with pauses;
a turn with `pause_before_s=0` starts the instant the previous one stops, which is how a speaker change inside a
sentence is made. The voices are ones espeak-ng renders clearly differently (en-us and en-gb+m3, for instance,
sound alike and are merged by any method; see shared/notes/vad-diarization.md).
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

from jetscribe.ffmpeg import ffmpeg_binary

SAMPLE_RATE: Final = 16_000
VOICES: Final = ("en-us", "en+f3", "en+m7", "en-us+klatt")
SPEED_WPM: Final = 160
_F32_MONO_16K: Final = ("-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-")
SILENCE_LEVEL: Final = 0.01
"""Absolute amplitude below which espeak-ng's output counts as silence when trimming a turn."""

SENTENCES: Final = (
    "I think we should look at the numbers from last week before we decide.",
    "The train was late again this morning, so I missed the first meeting.",
    "Could you send me the slides after lunch, and the notes from the call with the printers?",
    "We have three new customers in the north and one in the south, which is more than we hoped.",
    "That sounds fine to me, but we need to ask the finance team first.",
    "My sister is moving to a new flat near the river next month.",
    "The printer on the second floor has been broken since Tuesday.",
    "Let us meet again on Friday and see how far we have come.",
    "I bought fresh bread and cheese at the market on Saturday.",
    "The weather was cold and windy, but the children played outside all day.",
    "Our team finished the project two days before the deadline.",
    "He said the new road along the coast will open at the end of the summer, if the weather holds.",
    "We should order more paper and some new pens before the office runs out of everything.",
    "The museum has a new room full of old maps and paintings.",
    "She plays the piano every evening after dinner, and on Sundays she sings in the choir.",
    "Please remember to lock the back door and switch off the lights when you leave tonight.",
)


@dataclass(frozen=True, slots=True)
class Turn:
    """What one voice says, after a pause of `pause_before_s` (0 = straight on from the previous turn)."""

    speaker: int
    """Index into the conversation's voices."""
    text: str
    pause_before_s: float = 0.6


@dataclass(frozen=True, slots=True)
class TrueTurn:
    start: float
    end: float
    speaker: int


@dataclass(frozen=True, slots=True)
class Conversation:
    samples: NDArray[np.float32]
    """16 kHz mono."""
    turns: tuple[TrueTurn, ...]
    speakers: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def speak(text: str, voice: str) -> NDArray[np.float32]:
    """`text` in espeak-ng's `voice`, 16 kHz mono float32, leading and trailing silence removed."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "turn.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(SPEED_WPM), "-w", str(raw), text], check=True)
        pcm = subprocess.run(
            [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-i", str(raw), *_F32_MONO_16K],
            check=True,
            capture_output=True,
        ).stdout
    samples = np.frombuffer(pcm, dtype="<f4")
    loud = np.flatnonzero(np.abs(samples) > SILENCE_LEVEL)
    return samples[loud[0] : loud[-1] + 1].copy()


def converse(turns: list[Turn], voices: tuple[str, ...] = VOICES, *, lead_s: float = 0.5) -> Conversation:
    """The turns spoken in order, `lead_s` of silence at both ends, with the true speaker turns."""
    pieces: list[NDArray[np.float32]] = [np.zeros(int(lead_s * SAMPLE_RATE), dtype=np.float32)]
    truth: list[TrueTurn] = []
    at = len(pieces[0])
    for i, turn in enumerate(turns):
        if i > 0 and turn.pause_before_s > 0:
            pause = np.zeros(int(turn.pause_before_s * SAMPLE_RATE), dtype=np.float32)
            pieces.append(pause)
            at += len(pause)
        speech = speak(turn.text, voices[turn.speaker])
        pieces.append(speech)
        truth.append(TrueTurn(at / SAMPLE_RATE, (at + len(speech)) / SAMPLE_RATE, turn.speaker))
        at += len(speech)
    pieces.append(np.zeros(int(lead_s * SAMPLE_RATE), dtype=np.float32))
    return Conversation(np.concatenate(pieces), tuple(truth), len({t.speaker for t in turns}))


def round_robin(speakers: int, n_turns: int, *, first_sentence: int = 0) -> list[Turn]:
    """`n_turns` one-sentence turns (3–6 s each), the speakers taking turns in an irregular order.

    The order repeats no speaker twice in a row and is not strictly cyclic, so the labels cannot be guessed from
    the position of a turn alone.
    """
    order: list[int] = []
    pattern = [0, 1, 0, 2, 1, 3, 2, 0, 3, 1, 2, 3]
    candidates = [s for s in pattern if s < speakers]
    while len(order) < n_turns:
        for s in candidates:
            if not order or order[-1] != s:
                order.append(s)
    return [
        Turn(speaker, SENTENCES[(first_sentence + i) % len(SENTENCES)], pause_before_s=0.4 + 0.3 * (i % 3))
        for i, speaker in enumerate(order[:n_turns])
    ]
