"""docs/deploy.md names only files that exist and the build arguments the CUDA image declares."""

from __future__ import annotations

import re

from tests.deploy.dockerfiles import parse_dockerfile
from tests.deploy.repo import DEPLOY, REPO

DOC = REPO / "docs" / "deploy.md"


def test_every_repository_path_in_the_deploy_guide_exists() -> None:
    paths = set(re.findall(r"`((?:deploy|docs|jetscribe|schemas|tests|benchmarks)/[\w./@-]+)`", DOC.read_text()))
    paths |= {m.removeprefix("../") for m in re.findall(r"\]\((\.\./[\w./-]+)\)", DOC.read_text())}
    assert paths
    missing = sorted(p for p in paths if not (REPO / p.rstrip("/")).exists())
    assert not missing, missing


def test_build_argument_table_matches_the_cuda_dockerfile() -> None:
    dockerfile = parse_dockerfile(DEPLOY / "worker-cuda.Dockerfile")
    declared = dict(dockerfile.global_args) | dockerfile.stage_args(dockerfile.stages[0])
    rows = re.findall(r"^\| `([A-Z_]+)` \| `([^`]*)` \|", DOC.read_text(), flags=re.MULTILINE)
    assert {name for name, _ in rows} == {
        "CUDA_VERSION",
        "CUDNN_TAG",
        "UBUNTU_VERSION",
        "CUDA_ARCHITECTURES",
    }
    for name, default in rows:
        assert declared[name] == default, name
