"""The systemd unit for bare-metal workers, one per GPU: a real command, known settings, time to hand back a job."""

from __future__ import annotations

import configparser

import pytest

from cli.main import main as jetscribe_cli
from jetscribe.config import Settings
from tests.deploy.repo import DEPLOY, read_dotenv, settings_env_names

UNIT = DEPLOY / "systemd" / "jetscribe-worker@.service"
ENV_EXAMPLE = DEPLOY / "systemd" / "worker.env.example"


def service_section() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def worker_settings() -> Settings:
    env = {k: v for k, v in read_dotenv(ENV_EXAMPLE).items() if v}
    return Settings.from_env({**env, "JETSCRIBE_NATS_PASSWORD": "from-the-operator"})


def test_env_file_sets_only_jetscribe_settings_with_valid_values() -> None:
    assert set(read_dotenv(ENV_EXAMPLE)) <= settings_env_names()
    assert worker_settings().use_gpu


def test_each_instance_pins_its_gpu() -> None:
    assert service_section()["Environment"] == "CUDA_VISIBLE_DEVICES=%i"


def test_unit_runs_the_worker_command() -> None:
    executable, *command = service_section()["ExecStart"].split()
    assert executable.endswith("/jetscribe")
    with pytest.raises(SystemExit) as exited:
        jetscribe_cli([*command, "--help"])
    assert exited.value.code == 0 and command == ["worker"]


def test_stop_timeout_exceeds_the_workers_shutdown_grace() -> None:
    assert int(service_section()["TimeoutStopSec"]) > worker_settings().shutdown_grace_s


def test_data_dir_is_writable_under_the_sandbox() -> None:
    assert str(worker_settings().data_dir) in service_section()["ReadWritePaths"].split()
