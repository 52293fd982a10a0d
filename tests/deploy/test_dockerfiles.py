"""The images: Dockerfiles lint clean and build only from what the repository holds (no Docker engine needed)."""

from __future__ import annotations

import glob
import importlib.metadata
import json
import re
import subprocess
from pathlib import Path

import pytest

from cli.main import main as jetscribe_cli
from tests.deploy.dockerfiles import (
    copy_destination,
    copy_sources,
    dockerignored,
    env_names,
    expand_args,
    parse_dockerfile,
    read_dockerignore,
)
from tests.deploy.repo import DEPLOY, REPO, RUNTIME_ENV, settings_env_names, tool

DOCKERFILES = sorted(DEPLOY.glob("*.Dockerfile"))
WORKER_DOCKERFILES = [DEPLOY / "worker-cuda.Dockerfile", DEPLOY / "worker-cpu.Dockerfile"]
CUDA = DEPLOY / "worker-cuda.Dockerfile"
TURING_TO_HOPPER = "75;80;86;89;90"


def test_the_three_images_exist() -> None:
    assert [p.name for p in DOCKERFILES] == ["gateway.Dockerfile", "worker-cpu.Dockerfile", "worker-cuda.Dockerfile"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_lints_clean_with_hadolint(dockerfile: Path) -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_final_stage_runs_as_a_numeric_non_root_user(dockerfile: Path) -> None:
    users = parse_dockerfile(dockerfile).final.all("USER")
    assert users, f"{dockerfile.name}: the runtime stage never leaves root"
    uid = users[-1].args.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"{dockerfile.name}: USER {users[-1].args} (Kubernetes needs a numeric uid)"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_declares_a_health_check(dockerfile: Path) -> None:
    checks = parse_dockerfile(dockerfile).final.all("HEALTHCHECK")
    assert len(checks) == 1 and "CMD" in checks[0].args


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_copied_path_exists_and_is_in_the_build_context(dockerfile: Path) -> None:
    ignore = read_dockerignore(REPO / ".dockerignore")
    for stage in parse_dockerfile(dockerfile).stages:
        for copy in stage.all("COPY"):
            for source in copy_sources(copy):
                assert glob.glob(str(REPO / source)), f"{dockerfile.name}: COPY {source}: no such file"
                assert not dockerignored(source.rstrip("/"), ignore), f"{dockerfile.name}: {source} is .dockerignored"


def test_dockerignore_keeps_the_build_context_to_the_package() -> None:
    ignore = read_dockerignore(REPO / ".dockerignore")
    for kept in ("pyproject.toml", "README.md", "cli/main.py", "schemas/names.py", "deploy/worker_healthcheck.py"):
        assert not dockerignored(kept, ignore), kept
    for dropped in (".venv/bin/python", ".git/HEAD", "tests/conftest.py", "data/models/x.bin", ".env"):
        assert dockerignored(dropped, ignore), dropped


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_runs_a_real_jetscribe_command(dockerfile: Path) -> None:
    final = parse_dockerfile(dockerfile).final
    entrypoint = json.loads(final.all("ENTRYPOINT")[-1].args)
    command = json.loads(final.all("CMD")[-1].args)
    assert entrypoint == ["jetscribe"]
    with pytest.raises(SystemExit) as exited:
        jetscribe_cli([*command, "--help"])
    assert exited.value.code == 0


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_runtime_environment_names_only_known_variables(dockerfile: Path) -> None:
    known = settings_env_names() | RUNTIME_ENV
    for env in parse_dockerfile(dockerfile).final.all("ENV"):
        assert set(env_names(env)) <= known, f"{dockerfile.name}: unknown variables {set(env_names(env)) - known}"


@pytest.mark.parametrize("dockerfile", WORKER_DOCKERFILES, ids=lambda p: p.name)
def test_worker_image_has_ffmpeg_and_its_heartbeat_check(dockerfile: Path) -> None:
    final = parse_dockerfile(dockerfile).final
    assert any("ffmpeg" in run.args.split() for run in final.all("RUN"))
    installed = {copy_destination(copy) for copy in final.all("COPY")}
    check = json.loads(final.all("HEALTHCHECK")[0].args.split("CMD", 1)[1])
    assert check[-1] in installed and check[-1].endswith("worker_healthcheck.py")


def test_cuda_build_args_default_to_turing_through_hopper() -> None:
    dockerfile = parse_dockerfile(CUDA)
    assert {"CUDA_VERSION", "CUDNN_TAG", "UBUNTU_VERSION"} <= dockerfile.global_args.keys()
    assert all(dockerfile.global_args[name] for name in ("CUDA_VERSION", "CUDNN_TAG", "UBUNTU_VERSION"))
    build = dockerfile.stages[0]
    assert dockerfile.stage_args(build)["CUDA_ARCHITECTURES"] == TURING_TO_HOPPER


def test_cuda_build_stage_compiles_pywhispercpp_from_source_with_cuda() -> None:
    build = parse_dockerfile(CUDA).stages[0]
    assert build.base == "nvidia/cuda:${CUDA_VERSION}-${CUDNN_TAG}-devel-ubuntu${UBUNTU_VERSION}"
    compile_step = next(run.args for run in build.all("RUN") if "--no-binary=pywhispercpp" in run.args)
    assert "GGML_CUDA=1" in compile_step
    assert 'CMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHITECTURES}"' in compile_step


def test_cuda_build_compiles_the_pywhispercpp_version_the_tests_run() -> None:
    locked = re.search(r"^pywhispercpp==(\S+)", (REPO / "requirements" / "worker.txt").read_text(), flags=re.M)
    assert locked is not None
    assert locked.group(1) == importlib.metadata.version("pywhispercpp")


def test_cuda_runtime_stage_matches_the_build_stage_toolkit() -> None:
    dockerfile = parse_dockerfile(CUDA)
    build, runtime = dockerfile.stages[0], dockerfile.final
    assert runtime.base == build.base.replace("-devel-", "-runtime-")
    resolved = expand_args(runtime.base, dockerfile.global_args)
    assert resolved.startswith("nvidia/cuda:12.") and resolved.endswith("-runtime-ubuntu24.04"), resolved
