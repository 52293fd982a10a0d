"""The deployment files of this repository, loaded the way their tools read them."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import msgspec
import yaml

from jetscribe.config import Settings, env_name

REPO: Final = Path(__file__).resolve().parents[2]
DEPLOY: Final = REPO / "deploy"
K8S: Final = DEPLOY / "k8s"
COMPOSE_FILES: Final = (REPO / "docker-compose.yml", DEPLOY / "compose.multi-gpu.yml")
NATS_VALUES: Final = K8S / "nats-values.yaml"

# Variables a container may carry that are not jetscribe settings, each read by something else.
RUNTIME_ENV: Final = frozenset(
    {
        "CUDA_VISIBLE_DEVICES",  # CUDA runtime: which GPUs a process sees
        "NVIDIA_VISIBLE_DEVICES",  # NVIDIA Container Toolkit
        "NVIDIA_DRIVER_CAPABILITIES",  # NVIDIA Container Toolkit (utility = NVML for the heartbeat)
        "PATH",
        "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE",
        "DEBIAN_FRONTEND",
        "PIP_NO_CACHE_DIR",
        "PIP_DISABLE_PIP_VERSION_CHECK",
    }
)

_INTERPOLATION: Final = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


def tool(name: str) -> str:
    """A command-line tool the test extra installs beside this Python (or on PATH)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} is not installed: `pip install -e '.[test]'` brings it")
    return found


def settings_env_names() -> frozenset[str]:
    """Every environment variable jetscribe reads (one per Settings field)."""
    return frozenset(env_name(field.name) for field in msgspec.structs.fields(Settings))


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an env file (the subset of syntax `.env.example` uses)."""
    pairs: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def compose_variables(text: str) -> set[str]:
    """Names of the variables a compose file interpolates (`${X}`, `${X:-d}`, `${X:?e}`, `$X`)."""
    return {m.group(1) or m.group(4) for m in _INTERPOLATION.finditer(text) if m.group(0) != "$$"}


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable substitution applied to every string in `value`; a failed `:?` raises KeyError."""
    if isinstance(value, str):
        return _INTERPOLATION.sub(lambda m: _substitute(m, env), value)
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    return value


def _substitute(match: re.Match[str], env: Mapping[str, str]) -> str:
    if match.group(0) == "$$":
        return "$"
    name = match.group(1) or match.group(4)
    operator, argument = match.group(2), match.group(3) or ""
    current = env.get(name)
    unset_or_empty = not current if operator and operator.startswith(":") else current is None
    if operator in ("-", ":-"):
        return argument if unset_or_empty else str(current)
    if operator in ("?", ":?"):
        if unset_or_empty:
            raise KeyError(f"{name}: {argument}")
        return str(current)
    return current or ""
