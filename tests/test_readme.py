"""README.md stays true: its curl walk-through runs verbatim against `jetscribe serve`."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from jetscribe.config_reference import settings_table
from tests.serve import Service, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DEFAULT_URL = "http://localhost:8080"


def walkthrough() -> str:
    """The shell block between the walkthrough markers of README.md."""
    section = README.read_text().split("<!-- walkthrough:start -->")[1].split("<!-- walkthrough:end -->")[0]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "README.md has no ```sh block between the walkthrough markers"
    return match.group(1)


async def test_the_readme_walkthrough_works_against_jetscribe_serve(serving: Service) -> None:
    script = walkthrough()
    assert DEFAULT_URL in script
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        script.replace(DEFAULT_URL, serving.url),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    output = out.decode()

    assert process.returncode == 0, output
    assert "event: progress" in output
    assert "event: done" in output
    assert re.search(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", output), output
    assert output.rstrip().endswith("409"), output
    await wait_healthy(serving)


def test_the_readme_configuration_table_lists_every_setting_as_jetscribe_config_prints_it() -> None:
    section = README.read_text().split("<!-- settings:start -->\n")[1].split("<!-- settings:end -->")[0]

    assert section == settings_table(), "README.md is stale: paste the output of `jetscribe config` into it"
