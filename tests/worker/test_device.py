"""Which GPU the heartbeat reports: the one CUDA_VISIBLE_DEVICES gives whisper.cpp."""

from __future__ import annotations

import pytest

from worker.heartbeat import visible_gpu


@pytest.mark.parametrize(
    ("cuda_visible_devices", "device"),
    [
        (None, 0),
        ("", 0),
        ("3", 3),
        ("2,0", 2),
        ("GPU-8f2a9c1e-0000-4d2e-9c3b-1a2b3c4d5e6f", "GPU-8f2a9c1e-0000-4d2e-9c3b-1a2b3c4d5e6f"),
        ("MIG-1b2c3d4e", "MIG-1b2c3d4e"),
    ],
)
def test_the_reported_gpu_is_the_first_visible_one(cuda_visible_devices: str | None, device: int | str) -> None:
    assert visible_gpu(cuda_visible_devices) == device
