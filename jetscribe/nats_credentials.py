"""The credentials of the embedded nats-server that `jetscribe serve` starts: made once, kept under `DATA_DIR`.

The file is shell-readable `KEY=value` lines, owner-only (0600), named for the variables the `nats` CLI reads
(`NATS_USER`, `NATS_PASSWORD`) and, again, for the settings jetscribe's own processes read (`JETSCRIBE_NATS_USER`,
`JETSCRIBE_NATS_PASSWORD`), so a native producer, or one more worker or diarization worker, on the same machine
connects with

    set -a; . <data_dir>/nats-credentials.env; set +a; nats --server nats://127.0.0.1:4222 stream ls
    set -a; . <data_dir>/nats-credentials.env; set +a; JETSCRIBE_NATS_URL=nats://127.0.0.1:4222 jetscribe diarizer

and a program reads the two values from it. The same file is reused on every start, so clients keep working across
restarts; deleting it makes new credentials on the next start.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Final

import msgspec

from jetscribe.errors import ConfigError

log = logging.getLogger(__name__)

USER: Final = "jetscribe"
USER_KEY: Final = "NATS_USER"
PASSWORD_KEY: Final = "NATS_PASSWORD"
SETTING_KEYS: Final = ("JETSCRIBE_NATS_USER", "JETSCRIBE_NATS_PASSWORD")
"""The same two values under the names of jetscribe's settings (written, not read back)."""
PASSWORD_BYTES: Final = 32
"""256 bits from `secrets`; written URL-safe base64 (43 characters of [A-Za-z0-9_-], safe unquoted in shell and
in the nats-server config)."""
OWNER_ONLY: Final = 0o600
_SAFE: Final = re.compile(r"[A-Za-z0-9_.-]+")
"""What a kept user name or password may hold: it is written quoted into the nats-server config."""
_HEADER: Final = (
    "# Credentials of the nats-server that `jetscribe serve` embeds (made once; keep this file owner-only).\n"
    "# Shell: set -a; . THIS_FILE; set +a  — the nats CLI reads NATS_USER and NATS_PASSWORD,\n"
    "# `jetscribe worker` and `jetscribe diarizer` JETSCRIBE_NATS_USER and JETSCRIBE_NATS_PASSWORD.\n"
)


class NatsCredentials(msgspec.Struct, frozen=True):
    """A user name and password that the embedded nats-server requires of every client."""

    user: str
    password: str


def load_or_create(path: Path) -> NatsCredentials:
    """The credentials kept in `path`, created there (mode 0600) with a random password when it does not exist.

    A kept file readable by others is narrowed to 0600 (with a warning). Raises ConfigError when the file cannot
    be read or written, or lacks `NATS_USER` / `NATS_PASSWORD`.
    """
    try:
        return _load(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot read the NATS credentials file {path}: {exc}") from exc
    credentials = NatsCredentials(user=USER, password=secrets.token_urlsafe(PASSWORD_BYTES))
    user_setting, password_setting = SETTING_KEYS
    text = (
        f"{_HEADER}{USER_KEY}={credentials.user}\n{PASSWORD_KEY}={credentials.password}\n"
        f"{user_setting}={credentials.user}\n{password_setting}={credentials.password}\n"
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY)
        with os.fdopen(fd, "w") as out:
            os.fchmod(out.fileno(), OWNER_ONLY)  # the umask can only narrow the mode; make it exact
            out.write(text)
    except FileExistsError:
        return _load(path)  # another process made it between our read and our create
    except OSError as exc:
        raise ConfigError(f"cannot write the NATS credentials file {path}: {exc}") from exc
    log.info("made NATS credentials for the embedded nats-server in %s (mode 0600)", path)
    return credentials


def _load(path: Path) -> NatsCredentials:
    with path.open() as source:
        mode = stat.S_IMODE(os.fstat(source.fileno()).st_mode)
        if mode & 0o077:
            log.warning("%s was readable by others (mode %04o): narrowing it to 0600", path, mode)
            os.fchmod(source.fileno(), OWNER_ONLY)
        text = source.read()
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.lstrip().startswith("#"))
    user, password = values.get(USER_KEY, "").strip(), values.get(PASSWORD_KEY, "").strip()
    if not _SAFE.fullmatch(user) or not _SAFE.fullmatch(password):
        raise ConfigError(
            f"the NATS credentials file {path} lacks {USER_KEY}= or {PASSWORD_KEY}= (letters, digits, `_`, `.`, "
            "`-`): delete it and restart to make new ones"
        )
    return NatsCredentials(user=user, password=password)
