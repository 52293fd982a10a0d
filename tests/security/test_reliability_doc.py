"""docs/RELIABILITY.md stays true: every test it cites exists where it says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).parents[2]
DOC: Final = ROOT / "docs" / "RELIABILITY.md"
CITATION: Final = re.compile(r"(tests/[\w/]+\.py)::(test_\w+)")
FILE: Final = re.compile(r"`(tests/[\w/]+\.py)`")


def test_every_cited_test_exists_in_the_cited_file() -> None:
    citations = CITATION.findall(DOC.read_text())
    assert len(citations) > 20
    missing = [f"{path}::{name}" for path, name in citations if f"def {name}(" not in (ROOT / path).read_text()]
    assert missing == []


def test_every_cited_test_file_exists() -> None:
    missing = [path for path in FILE.findall(DOC.read_text()) if not (ROOT / path).is_file()]
    assert missing == []
