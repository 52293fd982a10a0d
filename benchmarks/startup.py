"""Start-up: `jetscribe serve` from launch to a healthy `/health` (embedded NATS, model import on the first
run, model load + warm-up, gateway), and the warm-up inference's own cost.

    .venv/bin/python -m benchmarks.startup [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from benchmarks.report import median, table
from benchmarks.service import free_port, service_env, start_jetscribe, stop_jetscribe, wait_http
from jetscribe.config import Settings
from worker.engine import build_engine, engine_spec


async def serve_to_healthy(data_dir: Path, **env: str) -> float:
    port = free_port()
    process = await start_jetscribe("serve", service_env(data_dir, port, **env))
    try:
        return await wait_http(f"http://127.0.0.1:{port}/health", process=process)
    finally:
        await stop_jetscribe(process)


def warm_up_cost(settings: Settings) -> tuple[float, float]:
    """(model load s, warm-up inference s) of the engine a worker with `settings` builds for its model (tiny.en)."""
    spec = engine_spec(settings, settings.served_models[0])
    start = time.perf_counter()
    with build_engine(spec) as engine:
        loaded = time.perf_counter()
        engine.warm_up()
        return loaded - start, time.perf_counter() - loaded


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        first = await serve_to_healthy(
            Path(tmp) / "fresh", WHISPER_MODEL_PATH="", JETSCRIBE_MODELS_DIR=str(Path(tmp) / "models")
        )
        again = [await serve_to_healthy(Path(tmp) / "warm") for _ in range(args.runs)]
        # The service's own settings: `serve_to_healthy`'s environment.
        settings = Settings.from_env(service_env(Path(tmp) / "warm", free_port()))
    loads, warmups = zip(*(warm_up_cost(settings) for _ in range(args.runs)), strict=True)
    table(
        "Start-up (tiny.en, CPU)",
        [
            ("serve → healthy, first run (imports the model from PyPI)", f"{first:.2f} s"),
            (f"serve → healthy, model present (median of {args.runs})", f"{median(again):.2f} s"),
            ("model load", f"{median(loads) * 1000:.0f} ms"),
            ("warm-up inference (1 s of silence)", f"{median(warmups) * 1000:.0f} ms"),
        ],
    )


if __name__ == "__main__":
    asyncio.run(main())
