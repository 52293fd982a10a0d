"""The package layout is the architecture: imports point one way, and each role installs only what it needs.

```
schemas ◀── jetscribe ◀── gateway ◀─────────────────┐
   ▲            ▲                                   │
   │            ├──────── worker ◀──────────────────┤
   │            ├──────── diarization ◀─────────────┤
   │            │              │                    ├── cli (the composition root: nothing imports it)
   │            └──────── diarizer                  │
   └──────────────────── client ◀───────────────────┘
```

The stage workers (worker: Whisper on the GPU; diarization: speakers on the CPU) share `jetscribe.stage`, never
each other: a diarization worker must not load pywhispercpp.
```
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

REPO: Final = Path(__file__).parents[2]
PACKAGES: Final = ("schemas", "jetscribe", "gateway", "worker", "diarizer", "diarization", "client", "cli")
ALLOWED: Final[dict[str, frozenset[str]]] = {
    "schemas": frozenset({"schemas"}),
    "jetscribe": frozenset({"schemas", "jetscribe"}),
    "gateway": frozenset({"schemas", "jetscribe", "gateway"}),
    "worker": frozenset({"schemas", "jetscribe", "worker"}),
    "diarizer": frozenset({"schemas", "jetscribe", "diarizer"}),
    "diarization": frozenset({"schemas", "jetscribe", "diarizer", "diarization"}),
    "client": frozenset({"schemas", "client"}),
    "cli": frozenset(PACKAGES),
}


def first_party_imports(path: Path) -> set[str]:
    """The first-party top-level packages a module imports, at any depth (lazy imports count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & set(PACKAGES)
    return found


def modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_the_packages_below_it(package: str) -> None:
    wrong = {
        str(module.relative_to(REPO)): sorted(imported - ALLOWED[package])
        for module in modules(package)
        if (imported := first_party_imports(module)) - ALLOWED[package]
    }

    assert wrong == {}, f"{package} may import only {sorted(ALLOWED[package])}"


def test_the_allowed_directions_have_no_cycle() -> None:
    for package, allowed in ALLOWED.items():
        for other in allowed - {package}:
            assert package not in ALLOWED[other], f"{package} and {other} may import each other"


def test_the_wire_contract_needs_nothing_but_msgspec() -> None:
    third_party = set()
    for module in modules("schemas"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                third_party.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                third_party |= {alias.name.split(".")[0] for alias in node.names}

    assert third_party - set(sys.stdlib_module_names) - {"schemas"} == {"msgspec"}


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("gateway.main", ("numpy", "pywhispercpp", "_pywhispercpp", "pynvml", "ffmpeg")),
        ("jetscribe.models.pull", ("numpy",)),
        ("client", ("nats", "numpy", "jetscribe", "gateway", "worker")),
        # Each engine's library is imported only when a model runs on it (worker.engine.build_engine).
        (
            "worker.service",
            (
                "aiohttp_sse",
                "prometheus_client",
                "gateway",
                "diarizer",
                "sklearn",
                "_pywhispercpp",
                "ctranslate2",
                "faster_whisper",
                "onnxruntime",
            ),
        ),
        ("worker.whispercpp", ("ctranslate2", "faster_whisper", "onnxruntime")),
        ("worker.ctranslate2_engine", ("pywhispercpp", "_pywhispercpp")),
        ("diarizer", ("torch", "resemblyzer", "librosa", "pywhispercpp", "aiohttp_sse", "worker", "gateway")),
        ("diarization.service", ("pywhispercpp", "_pywhispercpp", "worker", "gateway", "aiohttp_sse", "torch")),
    ],
)
def test_a_role_loads_without_the_libraries_of_the_others(module: str, absent: tuple[str, ...]) -> None:
    probe = f"import sys, {module}; print(sorted(m for m in {absent!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)

    assert loaded.stdout.strip() == "[]"
