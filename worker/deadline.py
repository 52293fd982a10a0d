"""A job's wall-clock limit: `job_timeout_s`, plus `job_timeout_per_audio_s` for each second of its audio.

The clock starts when the job is claimed and stops while the job waits for its slot's engine (the
previous job's transcription is not this job's fault). The audio's length is added once it is
known (from the container's header, then from the decoded samples). When the clock runs out the
job's abort signal fires with reason "timeout": fetch, ffmpeg or whisper stop, the slot is freed
and the job fails, naming the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Final

from jetscribe.stage.abort import AbortSignal
from jetscribe.stage.decode import format_duration

CHECK_INTERVAL_S: Final = 1.0
"""How often the watch wakes up: a job overruns its limit by at most this much."""


class JobDeadline:
    """One job's clock and limit; `watch()` is the task that fires the abort signal (event loop only)."""

    def __init__(self, base_s: float, per_audio_s: float) -> None:
        self._base_s = base_s
        self._per_audio_s = per_audio_s
        self.audio_s = 0.0
        self.stage = "starting"
        self._spent_s = 0.0
        self._running_since: float | None = asyncio.get_running_loop().time()

    @property
    def limit_s(self) -> float:
        return self._base_s + self._per_audio_s * self.audio_s

    def elapsed_s(self) -> float:
        """Seconds the job has worked, waits for the engine excluded."""
        if self._running_since is None:
            return self._spent_s
        return self._spent_s + asyncio.get_running_loop().time() - self._running_since

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Stop the clock for the block (the job waits for its slot's engine)."""
        self._spent_s = self.elapsed_s()
        self._running_since = None
        try:
            yield
        finally:
            self._running_since = asyncio.get_running_loop().time()

    def message(self) -> str:
        return (
            f"the job ran out of time while {self.stage}: its limit is {format_duration(self.limit_s)} "
            f"(JETSCRIBE_JOB_TIMEOUT_S={self._base_s:g} + JETSCRIBE_JOB_TIMEOUT_PER_AUDIO_S={self._per_audio_s:g} "
            f"× {self.audio_s:g} s of audio); it was stopped"
        )

    async def watch(self, abort: AbortSignal) -> None:
        """Fire `abort` with reason "timeout" once the clock passes the limit."""
        while True:
            remaining_s = self.limit_s - self.elapsed_s()
            if remaining_s <= 0:
                break
            await asyncio.sleep(min(CHECK_INTERVAL_S, remaining_s))
        abort.trigger("timeout", self.message())
