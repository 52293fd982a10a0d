"""`jetscribe worker`: run one worker process until SIGTERM or SIGINT, then shut down gracefully."""

from __future__ import annotations

from jetscribe.config import Settings
from jetscribe.stage.run import run_stage
from worker.service import Worker


async def run_worker(settings: Settings) -> None:
    """Connect to `settings.nats_url` and run a Worker until a stop signal; then stop it and drain."""
    await run_stage(settings, "worker", Worker)
