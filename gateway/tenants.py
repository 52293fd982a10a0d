"""Tenants: whose API key a request carries, and so which jobs it may see.

Keys come from two places, both optional:

- `JETSCRIBE_TENANTS_FILE`, a TOML file naming each tenant with the SHA-256 digests (hex) of its keys, so
  the file holds no key itself::

      [tenants.acme]
      key_sha256 = ["5e88489…"]        # printf %s "$KEY" | sha256sum
      max_queued_jobs = 500            # optional: this tenant's own limit

      [tenants.ops]
      key_sha256 = ["a665a45…"]
      admin = true                     # sees (lists, reads, cancels) every tenant's jobs

- `JETSCRIBE_API_KEYS`, plain keys, which all belong to the tenant `default`: one team sharing its jobs
  (and several keys, so one can be rotated while the other still works), as before tenants existed.

With neither, the API is open and every caller is the anonymous caller of `default`, as before. A key is
recognised by its digest, compared in constant time against every configured digest. Tenant names
become tokens of NATS subjects (`schemas.names.TENANT_PATTERN`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final

import msgspec

from jetscribe.config import Settings
from jetscribe.errors import ConfigError
from schemas import names
from schemas.submit import TenantName

Sha256Hex = Annotated[str, msgspec.Meta(pattern="^[0-9a-fA-F]{64}$")]


class TenantEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One `[tenants.NAME]` table of the tenants file."""

    key_sha256: list[Sha256Hex]
    """SHA-256 digests (64 hex digits) of the tenant's API keys."""
    admin: bool = False
    """Whether the tenant's keys see every tenant's jobs."""
    max_queued_jobs: Annotated[int, msgspec.Meta(gt=0)] | None = None
    """Queued jobs the tenant may have at once; absent: `JETSCRIBE_MAX_QUEUED_JOBS_PER_TENANT`."""


class TenantsFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    tenants: dict[TenantName, TenantEntry]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request is: its tenant, and whether it may see every tenant's jobs."""

    tenant: str
    admin: bool = False

    def sees(self, tenant: str) -> bool:
        """Whether a job of `tenant` exists for this caller."""
        return self.admin or tenant == self.tenant


ANONYMOUS: Final = Caller(names.DEFAULT_TENANT, admin=True)
"""The caller of every request while no key is configured: it submits to `default` and, as before tenants
existed, sees every job."""
SHARED_KEY: Final = Caller(names.DEFAULT_TENANT)
"""The caller of a key in `JETSCRIBE_API_KEYS`."""


@dataclass(frozen=True, slots=True)
class _Key:
    digest: bytes
    caller: Caller


class Tenancy:
    """The configured keys by digest, each with its caller; and each tenant's queued-job limit."""

    def __init__(self, keys: list[_Key], queued_limits: dict[str, int]) -> None:
        self._keys = keys
        self._queued_limits = queued_limits

    @classmethod
    def from_settings(cls, settings: Settings) -> Tenancy:
        """The keys of `settings.api_keys` (tenant `default`) and of the tenants file. Reads the file (blocking).

        Raises ConfigError naming the file and what is wrong with it: unreadable, not TOML, a field out of
        shape, a tenant without a key, or a key listed twice.
        """
        keys = [_Key(hashlib.sha256(key.encode()).digest(), SHARED_KEY) for key in settings.api_keys]
        queued_limits: dict[str, int] = {}
        if settings.tenants_file is not None:
            for name, entry in _read(settings.tenants_file).tenants.items():
                if not entry.key_sha256:
                    # A file of tenants without keys would leave every route open to anyone, silently.
                    raise ConfigError(
                        f"JETSCRIBE_TENANTS_FILE={str(settings.tenants_file)!r}: tenant {name!r} has no key "
                        '(key_sha256 = []): give it at least one (`key_sha256 = ["<sha256 of the key>"]`, '
                        'printf %s "$KEY" | sha256sum) or remove it'
                    )
                caller = Caller(name, admin=entry.admin)
                keys.extend(_Key(bytes.fromhex(digest), caller) for digest in entry.key_sha256)
                if entry.max_queued_jobs is not None:
                    queued_limits[name] = entry.max_queued_jobs
        seen: set[bytes] = set()
        for key in keys:
            if key.digest in seen:
                raise ConfigError(
                    f"the key with SHA-256 {key.digest.hex()} is configured twice (in JETSCRIBE_API_KEYS or "
                    f"{settings.tenants_file}): a key belongs to one tenant"
                )
            seen.add(key.digest)
        return cls(keys, queued_limits)

    @property
    def keys_required(self) -> bool:
        """Whether any key is configured: then every guarded route needs one."""
        return bool(self._keys)

    def caller_of(self, token: str) -> Caller | None:
        """The caller whose key `token` is, or None. Every digest is compared, whatever matches first."""
        presented = hashlib.sha256(token.encode()).digest()
        found: Caller | None = None
        for key in self._keys:
            if hmac.compare_digest(presented, key.digest):
                found = key.caller
        return found

    def queued_limit(self, tenant: str, default: int | None) -> int | None:
        """Queued jobs `tenant` may have: its own limit from the file, else `default` (None: no limit)."""
        return self._queued_limits.get(tenant, default)


def _read(path: Path) -> TenantsFile:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"JETSCRIBE_TENANTS_FILE={str(path)!r} cannot be read: {exc.strerror}") from exc
    try:
        return msgspec.toml.decode(raw, type=TenantsFile)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(
            f"JETSCRIBE_TENANTS_FILE={str(path)!r} is not a valid tenants file: {exc} (expected `[tenants.NAME]` "
            'tables with `key_sha256 = ["<64 hex digits>", …]`, optional `admin = true` and `max_queued_jobs`)'
        ) from exc
