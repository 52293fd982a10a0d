"""How many speakers a job may have: the `num_speakers`, `min_speakers` and `max_speakers` options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from diarizer.errors import SpeakerCountError

DEFAULT_MAX_SPEAKERS: Final = 8
"""The most speakers looked for when no bound is given: more than most meetings, few enough to keep the
eigen-gap estimate from splitting one voice that varies (spectralcluster's published configurations use 7)."""
LIMIT: Final = 32
"""The most speakers any request may ask for."""


@dataclass(frozen=True, slots=True)
class SpeakerCount:
    """Constraints on the number of speakers; none given = estimate it between 1 and `DEFAULT_MAX_SPEAKERS`.

    `num_speakers` fixes it; `min_speakers` / `max_speakers` bound the estimate. Raises SpeakerCountError when a
    value is below 1 or above `LIMIT`, when min > max, or when `num_speakers` lies outside given bounds.
    """

    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None

    def __post_init__(self) -> None:
        for name in ("num_speakers", "min_speakers", "max_speakers"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= LIMIT:
                raise SpeakerCountError(f"{name} must be between 1 and {LIMIT}, not {value}")
        low, high = self.min_speakers, self.max_speakers
        if low is not None and high is not None and low > high:
            raise SpeakerCountError(f"min_speakers ({low}) is more than max_speakers ({high})")
        if self.num_speakers is not None and not (low or 1) <= self.num_speakers <= (high or LIMIT):
            raise SpeakerCountError(
                f"num_speakers ({self.num_speakers}) lies outside min_speakers..max_speakers ({low}..{high})"
            )

    @property
    def bounds(self) -> tuple[int, int]:
        """(fewest, most) speakers to look for."""
        if self.num_speakers is not None:
            return self.num_speakers, self.num_speakers
        low = self.min_speakers or 1
        return low, self.max_speakers or max(low, DEFAULT_MAX_SPEAKERS)
