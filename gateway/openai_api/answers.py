"""A finished job as OpenAI answers a transcription: `json`, `text`, `srt`, `vtt`, `verbose_json` or `diarized_json`.

The text is the segments' texts joined with spaces (directly in a language written without them), as Whisper
joins them. SRT and WebVTT are `GET /jobs/{id}/transcript`'s own, one cue per segment. `verbose_json` fills every
segment field from what the worker recorded (`schemas.Segment`); `seek` and per-word `logprobs` are as close as
whisper.cpp allows (see `schemas.openai_api`). `diarized_json` gives one entry per labelled segment (the diarization
stage splits a Whisper segment where the speaker changes), with OpenAI's speaker letters for the job's labels.
"""

from __future__ import annotations

import math
from typing import Final

from aiohttp import web

from gateway.openai_api.request import OpenAIRequest
from gateway.transcripts import to_srt, to_vtt
from schemas import Job, Segment, encode
from schemas.languages import LANGUAGE_NAMES, UNSPACED_LANGUAGES
from schemas.openai_api import (
    DiarizedSegment,
    DiarizedTranscription,
    DurationUsage,
    Logprob,
    Transcription,
    VerboseSegment,
    VerboseTranscription,
    VerboseWord,
)

FRAMES_PER_S: Final = 100
"""Whisper's `seek` counts 10 ms mel frames."""
MIN_PROBABILITY: Final = 1e-12
"""A word probability of 0 (rounded) would have a log probability of −∞, which JSON cannot hold."""


def joiner(job: Job) -> str:
    """How segment texts join: with a space, or directly in a language written without spaces."""
    return "" if job.task == "transcribe" and job.language in UNSPACED_LANGUAGES else " "


def spoken(segments: list[Segment]) -> list[Segment]:
    return [segment for segment in segments if segment.text.strip()]


def full_text(job: Job) -> str:
    return joiner(job).join(segment.text.strip() for segment in spoken(job.segments))


def logprobs(segment: Segment) -> list[Logprob]:
    """The segment's words with their log probabilities (natural log of whisper.cpp's word probability)."""
    return [
        Logprob(
            token=word.word,
            logprob=round(math.log(max(word.probability, MIN_PROBABILITY)), 6),
            bytes=list(word.word.encode()),
        )
        for word in segment.words
    ]


def usage(job: Job) -> DurationUsage:
    """Seconds of audio, rounded up to whole seconds as OpenAI reports them."""
    return DurationUsage(seconds=math.ceil(job.duration_secs or 0.0))


def verbose(job: Job, asked: OpenAIRequest) -> VerboseTranscription:
    segments = [
        VerboseSegment(
            id=n,
            seek=round(segment.start * FRAMES_PER_S),
            start=segment.start,
            end=segment.end,
            text=segment.text,
            tokens=segment.tokens,
            temperature=segment.temperature,
            avg_logprob=segment.avg_logprob,
            compression_ratio=segment.compression_ratio,
            no_speech_prob=segment.no_speech_prob,
        )
        for n, segment in enumerate(spoken(job.segments))
    ]
    answer = VerboseTranscription(
        task=job.task,
        language=LANGUAGE_NAMES.get(job.language or "", ""),
        duration=job.duration_secs or 0.0,
        text=full_text(job),
        segments=segments,
        usage=usage(job),
    )
    if asked.words:
        answer.words = [
            VerboseWord(word=word.word.strip(), start=word.start, end=word.end)
            for segment in spoken(job.segments)
            for word in segment.words
            if word.word.strip()
        ]
    return answer


def speaker_letter(index: int) -> str:
    """OpenAI's label for the `index`-th speaker (from 0): `A` … `Z`, then `AA`, `AB`, … as spreadsheet columns."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def diarized(job: Job) -> DiarizedTranscription:
    """The job's labelled segments with OpenAI's speaker letters (`SPEAKER_00` → `A`, …; the job's labels are
    numbered in the order the speakers are first heard, and so are the letters)."""
    labels = sorted({segment.speaker for segment in job.segments if segment.speaker})
    letters = {label: speaker_letter(n) for n, label in enumerate(labels)}
    segments = [
        DiarizedSegment(
            id=f"seg_{n}",
            start=segment.start,
            end=segment.end,
            text=segment.text.strip(),
            speaker=letters.get(segment.speaker or "", "unknown"),
        )
        for n, segment in enumerate(spoken(job.segments))
    ]
    return DiarizedTranscription(
        task="transcribe", duration=job.duration_secs or 0.0, text=full_text(job), segments=segments, usage=usage(job)
    )


def answer(job: Job, asked: OpenAIRequest) -> web.Response:
    """The response to a request whose job is done, in the format it asked for."""
    match asked.response_format:
        case "text":
            return web.Response(text=full_text(job) + "\n", content_type="text/plain")
        case "srt":
            return web.Response(text=to_srt(job.segments), content_type="application/x-subrip")
        case "vtt":
            return web.Response(text=to_vtt(job.segments), content_type="text/vtt")
        case "verbose_json":
            return web.Response(body=encode(verbose(job, asked)), content_type="application/json")
        case "diarized_json":
            return web.Response(body=encode(diarized(job)), content_type="application/json")
    body = Transcription(text=full_text(job), usage=usage(job))
    if asked.logprobs:
        body.logprobs = [entry for segment in spoken(job.segments) for entry in logprobs(segment)]
    return web.Response(body=encode(body), content_type="application/json")
