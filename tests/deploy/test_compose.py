"""docker-compose: it parses, and every file, image, variable and dependency it names exists and fits together."""

from __future__ import annotations

import subprocess
from pathlib import Path, PurePosixPath

import pytest

from jetscribe.config import Settings
from tests.deploy.dockerfiles import parse_dockerfile
from tests.deploy.manifests import (
    JETSCRIBE_IMAGES,
    all_services,
    env_example,
    has_health_check,
    image_repo,
    jetscribe_services,
    services,
)
from tests.deploy.repo import COMPOSE_FILES, REPO, compose_variables, interpolate, load_yaml, settings_env_names, tool


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_parses(path: Path) -> None:
    assert isinstance(load_yaml(path)["services"], dict)


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_follows_the_compose_specification(path: Path) -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_env_example_lists_exactly_the_variables_compose_uses() -> None:
    used = set().union(*(compose_variables(path.read_text()) for path in COMPOSE_FILES))
    assert used == set(env_example())


def test_missing_nats_passwords_stop_compose_with_a_message() -> None:
    empty_passwords = {k: v for k, v in env_example().items() if v}
    with pytest.raises(KeyError, match=r"set NATS_GATEWAY_PASSWORD in \.env"):
        interpolate(load_yaml(REPO / "docker-compose.yml")["services"]["gateway"], empty_passwords)


def test_every_jetscribe_image_is_built_from_a_dockerfile_in_the_repo() -> None:
    built: dict[str, str] = {}
    for name, service in jetscribe_services().items():
        build = service.get("build")
        assert build, f"{name}: image {service['image']} has no build section"
        dockerfile = REPO / build["context"] / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
        assert built.setdefault(image_repo(service["image"]), build["dockerfile"]) == build["dockerfile"]
    assert sorted(built) == sorted(JETSCRIBE_IMAGES)


def test_build_args_are_arguments_the_dockerfile_declares() -> None:
    for name, service in jetscribe_services().items():
        build = service["build"]
        dockerfile = parse_dockerfile(REPO / build["dockerfile"])
        declared = set(dockerfile.global_args)
        for stage in dockerfile.stages:
            declared |= set(dockerfile.stage_args(stage))
        assert set(build.get("args", {})) <= declared, f"{name}: {set(build['args']) - declared}"


def test_jetscribe_services_set_only_jetscribe_settings_and_valid_values() -> None:
    known = settings_env_names()
    for name, service in jetscribe_services().items():
        environment = {k: str(v) for k, v in service["environment"].items()}
        assert set(environment) <= known, f"{name}: not jetscribe settings: {set(environment) - known}"
        Settings.from_env(environment)


def test_bind_mounts_point_at_files_in_the_repo() -> None:
    for name, service in all_services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name}: {source} does not exist"


def test_named_volumes_are_declared() -> None:
    declared = set(load_yaml(REPO / "docker-compose.yml")["volumes"])
    for name, service in all_services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"


def test_nats_runs_the_shipped_single_node_config() -> None:
    nats = services()["nats"]
    config = PurePosixPath(nats["command"][nats["command"].index("--config") + 1])
    mounts = {PurePosixPath(v.split(":")[1]): v.split(":")[0] for v in nats["volumes"]}
    on_host = REPO / mounts[config.parent] / config.name
    assert on_host == REPO / "deploy/nats/nats.conf" and on_host.is_file()
    assert nats["image"].startswith("nats:") and nats["image"].endswith("-alpine")


def test_nats_gets_the_passwords_its_config_reads() -> None:
    every = services()
    nats = every["nats"]["environment"]
    accounts = (REPO / "deploy/nats/accounts.conf").read_text()
    for variable in nats:
        assert f"${variable}" in accounts
    assert nats["NATS_GATEWAY_PASSWORD"] == every["gateway"]["environment"]["JETSCRIBE_NATS_PASSWORD"]
    assert nats["NATS_WORKER_PASSWORD"] == every["worker"]["environment"]["JETSCRIBE_NATS_PASSWORD"]


def test_dependencies_wait_for_health_or_completion() -> None:
    every = all_services()
    for name, service in every.items():
        for target, rule in service.get("depends_on", {}).items():
            condition = rule["condition"]
            assert target in every, f"{name} depends on unknown {target}"
            if condition == "service_healthy":
                assert has_health_check(every[target]), f"{name} waits for {target}, which has no health check"
            else:
                assert condition == "service_completed_successfully" and every[target]["restart"] == "no"


def test_workers_and_gateway_wait_for_healthy_nats() -> None:
    for name, service in jetscribe_services().items():
        if name != "models":
            assert service["depends_on"]["nats"]["condition"] == "service_healthy", name


def test_model_fetch_pulls_the_configured_model_into_the_volume_the_workers_read() -> None:
    every = all_services()
    fetch = every["models"]
    assert "jetscribe models pull" in " ".join(fetch["command"])
    fetch_settings = Settings.from_env({k: str(v) for k, v in fetch["environment"].items()})
    (fetch_volume,) = [v.split(":")[0] for v in fetch["volumes"] if v.split(":")[1] == str(fetch_settings.model_dir)]
    workers = {n: s for n, s in every.items() if n.startswith("worker")}
    assert len(workers) >= 3
    for name, worker in workers.items():
        settings = Settings.from_env({k: str(v) for k, v in worker["environment"].items()})
        assert settings.whisper_model == fetch_settings.whisper_model
        assert f"{fetch_volume}:{settings.model_dir}:ro" in worker["volumes"], name
        assert worker["depends_on"]["models"]["condition"] == "service_completed_successfully"


def test_gpu_workers_each_reserve_their_own_nvidia_gpu() -> None:
    gpus = []
    for name, worker in all_services().items():
        if worker["image"].startswith("jetscribe/worker-cuda"):
            (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
            assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"], name
            gpus.extend(device["device_ids"])
            assert worker["environment"]["JETSCRIBE_USE_GPU"] == "true"
    assert sorted(gpus) == ["0", "1", "2", "3"]


def test_workers_get_longer_to_stop_than_their_shutdown_grace() -> None:
    for name, service in all_services().items():
        if name.startswith("worker"):
            settings = Settings.from_env({k: str(v) for k, v in service["environment"].items()})
            assert int(service["stop_grace_period"].removesuffix("s")) > settings.shutdown_grace_s, name


def test_compose_single_node_streams_use_one_replica() -> None:
    for name, service in jetscribe_services().items():
        if "JETSCRIBE_REPLICAS" in service["environment"]:
            assert service["environment"]["JETSCRIBE_REPLICAS"] == "1", name
