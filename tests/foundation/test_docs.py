"""docs/nats.md stays true: it names every NATS name and message, and its Python example works."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import Final

import pytest

from jetscribe.embedded import EmbeddedNats
from schemas import names
from schemas.export import MESSAGES

DOC: Final = Path(__file__).parents[2] / "docs" / "nats.md"
AUDIO: Final = Path(__file__).parents[1] / "fixtures" / "audio"


def doc_text() -> str:
    return DOC.read_text()


def python_example() -> str:
    [example] = re.findall(r"```python\n(.*?)```", doc_text(), flags=re.S)
    return example


@pytest.mark.parametrize(
    "name",
    sorted(
        {
            value
            for key, value in vars(names).items()
            if key.isupper() and isinstance(value, str) and key != "SUBJECT_ROOT"
        }
        | {subject for key, value in vars(names).items() if key.endswith("_SUBJECTS") for subject in value}
        | {"jetscribe.progress.<job_id>", "jetscribe.cancel.<job_id>", "jetscribe.events.<type>.<job_id>"}
    ),
)
def test_the_nats_doc_names_every_subject_stream_bucket_and_consumer(name: str) -> None:
    assert name in doc_text()


@pytest.mark.parametrize("message", MESSAGES, ids=lambda t: t.__name__)
def test_the_nats_doc_describes_every_message(message: type) -> None:
    assert f"`{message.__name__}`" in doc_text()


@pytest.mark.usefixtures("worker")
async def test_the_python_example_transcribes_through_a_real_worker(nats_server: EmbeddedNats, tmp_path: Path) -> None:
    script = tmp_path / "transcribe.py"
    script.write_text(python_example())

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        str(AUDIO / "en1.ogg"),
        nats_server.url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)

    assert process.returncode == 0, stderr.decode()
    assert "children are playing in the garden" in stdout.decode().lower()
    assert "queued as #1 in JETSCRIBE_JOBS" in stderr.decode()
