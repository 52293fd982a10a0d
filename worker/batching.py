"""Batched decoding across jobs: the 30 s chunks of every job on one CTranslate2 model, decoded N at a time.

A worker's slots for a CTranslate2 model share one model and one `ChunkBatcher`. Each job (on its slot's thread)
cuts its speech into chunks of at most 30 s and hands them over; whichever job thread finds the model free runs the
next batch — up to `batch_size` chunks, taken round-robin from the jobs waiting, so a short job is not stuck behind
a long one — through faster-whisper's batched forward pass (`BatchedInferencePipeline.forward`: one encoder pass and
one `generate` call for the whole batch), and hands each chunk's segments to its job. No thread of its own: the
threads of the jobs waiting take turns (leader and followers), so the batcher has no lifecycle to manage.

Only chunks decoded the same way share a batch: one prompt (language, task, initial prompt) and one set of decoding
options holds for the whole of a `generate` call. Each job gets its chunks' results in its own order, as they come;
a job whose abort fires stops waiting at once, and its chunks not yet taken are dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.audio import pad_or_trim

from jetscribe.stage.abort import AbortSignal
from jetscribe.stage.decode import SAMPLE_RATE, Samples
from jetscribe.stage.errors import JobAbortedError

log = logging.getLogger(__name__)

WAIT_S: Final = 0.1
"""How often a job waiting for its chunk looks at its abort signal."""


@dataclass(frozen=True, slots=True)
class DecodeSetup:
    """How a job's chunks are decoded: faster-whisper's tokenizer and options. `key` is equal for set-ups that
    may share a batch."""

    key: Hashable
    tokenizer: Any
    options: Any


@dataclass(eq=False, slots=True)
class Chunk:
    """At most 30 s of one job's speech, and what became of it."""

    job: object
    """Identifies the job (chunks of one job are decoded in order of submission)."""
    setup: DecodeSetup
    samples: Samples
    start_s: float
    """Where the chunk starts in the audio the job decodes; its segments' times are offset by it."""
    segments: list[dict[str, Any]] | None = None
    """faster-whisper's segments of the chunk (dicts: `start`, `end`, `text`, `tokens`, `words`, …), once decoded."""
    error: BaseException | None = None
    taken: bool = field(default=False)


class ChunkBatcher:
    """Decodes the chunks of all jobs on `model`, up to `batch_size` in one forward pass (thread-safe)."""

    def __init__(self, model: WhisperModel, batch_size: int) -> None:
        self._model = model
        self._batch_size = batch_size
        self._changed = threading.Condition()
        self._pending: list[Chunk] = []
        self._running = False

    def decode(self, chunks: list[Chunk], abort: AbortSignal) -> Iterator[Chunk]:
        """Yield `chunks` decoded, in order, as each is done (blocking). Raises JobAbortedError once `abort` fires,
        or the error of the batch a chunk was in."""
        with self._changed:
            self._pending.extend(chunks)
            self._changed.notify_all()
        try:
            for chunk in chunks:
                self._until_decoded(chunk, abort)
                if chunk.error is not None:
                    raise chunk.error
                yield chunk
        finally:
            mine = {id(c) for c in chunks}
            with self._changed:
                self._pending = [c for c in self._pending if id(c) not in mine]

    def _until_decoded(self, chunk: Chunk, abort: AbortSignal) -> None:
        while True:
            with self._changed:
                while chunk.segments is None and chunk.error is None and (self._running or chunk.taken):
                    if abort.is_set():
                        raise JobAbortedError(abort.reason or "cancelled")
                    self._changed.wait(WAIT_S)
                if chunk.segments is not None or chunk.error is not None:
                    return
                if abort.is_set():
                    raise JobAbortedError(abort.reason or "cancelled")
                batch = self._take()
                self._running = True
            try:
                self._run(batch)
            finally:
                with self._changed:
                    self._running = False
                    self._changed.notify_all()

    def _take(self) -> list[Chunk]:
        """The next batch: the oldest waiting chunk, then chunks that may share its batch, one job at a time in
        turn (each job's own chunks in order). Called with the lock held."""
        first = self._pending[0]
        compatible = [c for c in self._pending if c.setup.key == first.setup.key]
        by_job: dict[int, list[Chunk]] = {}
        for c in compatible:
            by_job.setdefault(id(c.job), []).append(c)
        batch: list[Chunk] = []
        queues = list(by_job.values())
        while len(batch) < self._batch_size and any(queues):
            for queue in queues:
                if queue and len(batch) < self._batch_size:
                    batch.append(queue.pop(0))
        for c in batch:
            c.taken = True
        self._pending = [c for c in self._pending if not c.taken]
        return batch

    def _run(self, batch: list[Chunk]) -> None:
        """One forward pass over `batch` (without the lock: other jobs keep handing over chunks meanwhile)."""
        setup = batch[0].setup
        log.debug("decoding a batch of %d chunks from %d jobs", len(batch), len({id(c.job) for c in batch}))
        try:
            features = np.stack([pad_or_trim(self._model.feature_extractor(c.samples)[..., :-1]) for c in batch])
            metadata = [{"start_time": c.start_s, "end_time": c.start_s + c.samples.size / SAMPLE_RATE} for c in batch]
            pipeline = BatchedInferencePipeline(self._model)
            results = pipeline.forward(features, setup.tokenizer, metadata, setup.options)
        except Exception as exc:  # handed to every job in the batch, which turns it into its own error
            for c in batch:
                c.error = exc
            return
        for c, segments in zip(batch, results, strict=True):
            c.segments = segments
