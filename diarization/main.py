"""`jetscribe diarizer`: run one diarization worker until SIGTERM or SIGINT, then shut down gracefully."""

from __future__ import annotations

from diarization.service import DiarizationWorker
from jetscribe.config import Settings
from jetscribe.stage.run import run_stage


async def run_diarizer(settings: Settings) -> None:
    """Connect to `settings.nats_url` and run a DiarizationWorker until a stop signal; then stop it and drain."""
    await run_stage(settings, "diarizer", DiarizationWorker)
