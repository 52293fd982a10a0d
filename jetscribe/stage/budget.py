"""The decoded-audio budget of one worker slot: bytes of 16 kHz float32 samples it may hold at once.

A slot holds the samples of the job it transcribes and, while that one runs, of the next job it
prefetches. Both draw from one budget of `max_audio_s` seconds (64,000 bytes per second of audio):
the prefetched job's decode takes budget as it reads ffmpeg's output and waits, with ffmpeg blocked
on its pipe, while the running job holds the rest. So a slot never holds more decoded audio than
one maximal job, whatever prefetch does.
"""

from __future__ import annotations

import asyncio

BYTES_PER_AUDIO_S = 16_000 * 4
"""16 kHz mono float32: 64,000 bytes per second of audio (about 230 MB per hour)."""


class AudioBudget:
    """Bytes of decoded audio one slot may hold; `take` waits while the rest is held (event loop only)."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.held_bytes = 0
        self._freed = asyncio.Event()

    def fits(self, n: int) -> bool:
        """Whether `take(n)` would return at once."""
        return self.held_bytes + n <= self.limit_bytes

    async def take(self, n: int) -> None:
        """Wait until `n` more bytes fit within the limit, then hold them."""
        if n > self.limit_bytes:
            raise ValueError(f"{n} bytes can never fit a budget of {self.limit_bytes} bytes")
        while not self.fits(n):
            self._freed.clear()
            await self._freed.wait()
        self.held_bytes += n

    def give_back(self, n: int) -> None:
        """Release `n` held bytes and wake whoever waits for them."""
        self.held_bytes -= n
        self._freed.set()
