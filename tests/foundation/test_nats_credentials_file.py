"""The embedded nats-server's credentials file (jetscribe.nats_credentials): made once, owner-only, read back."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from jetscribe.errors import ConfigError
from jetscribe.nats_credentials import load_or_create


def test_credentials_are_made_once_owner_only_and_read_back_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nats-credentials.env"
    made = load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(made.password) >= 43
    assert load_or_create(path) == made


def test_the_file_also_holds_the_values_under_the_names_of_jetscribes_settings(tmp_path: Path) -> None:
    path = tmp_path / "nats-credentials.env"
    made = load_or_create(path)
    lines = set(path.read_text().splitlines())
    assert {f"JETSCRIBE_NATS_USER={made.user}", f"JETSCRIBE_NATS_PASSWORD={made.password}"} <= lines


def test_two_data_dirs_get_different_passwords(tmp_path: Path) -> None:
    assert load_or_create(tmp_path / "a.env").password != load_or_create(tmp_path / "b.env").password


def test_a_kept_file_readable_by_others_is_narrowed_to_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "nats-credentials.env"
    made = load_or_create(path)
    path.chmod(0o644)
    assert load_or_create(path) == made
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_file_without_a_password_is_refused_naming_the_file_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "nats-credentials.env"
    path.write_text("NATS_USER=jetscribe\n")
    with pytest.raises(ConfigError, match=r"nats-credentials\.env lacks NATS_USER= or NATS_PASSWORD=.*delete it"):
        load_or_create(path)


def test_a_password_that_would_break_the_server_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nats-credentials.env"
    path.write_text('NATS_USER=jetscribe\nNATS_PASSWORD=a"b\n')
    with pytest.raises(ConfigError, match="letters, digits"):
        load_or_create(path)
