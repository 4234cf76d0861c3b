"""A runner identity: who it is, which tenants it serves, and how its secret is checked."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from grantline.contract.runner_identities import (
    RUNNER_ID,
    TENANT_TOKEN,
    RunnerInfo,
    runner_inbox_prefix,
)

SECRET_PREFIX = "rns_"
MAX_TENANTS = 100
MAX_NAME = 200


class RunnerError(ValueError):
    """A request about runners that cannot be honoured (bad input, unknown or foreign runner)."""


class UnknownRunner(RunnerError):
    """No such runner (or not one the caller may see)."""


def new_runner_id() -> str:
    """A fresh runner id, ``rnr_`` and 24 lowercase hex digits: a valid NATS subject token."""
    return "rnr_" + secrets.token_hex(12)


def new_secret() -> str:
    """A fresh runner secret: 256 random bits."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> bytes:
    """What the registry keeps of a secret.

    A plain SHA-256 is enough: the secret is 256 random bits, so there is nothing to brute-force
    that a slow password hash would protect, and the callout stays fast on a reconnect storm.
    """
    return hashlib.sha256(secret.encode()).digest()


def check_tenants(tenants: Sequence[str]) -> tuple[str, ...]:
    """``tenants`` de-duplicated, each a valid tenant id, at least one."""
    unique = tuple(dict.fromkeys(t.strip() for t in tenants))
    if not unique:
        raise RunnerError("a runner serves at least one tenant, or is platform-wide")
    if len(unique) > MAX_TENANTS:
        raise RunnerError(f"a runner serves at most {MAX_TENANTS} tenants; make it platform-wide")
    for tenant in unique:
        if not TENANT_TOKEN.match(tenant):
            raise RunnerError(f"invalid tenant id {tenant!r} (letters, digits, '_' and '-', 1-128)")
    return unique


def check_name(name: str) -> str:
    """A runner's display name: printable, at most 200 characters."""
    name = name.strip()
    if len(name) > MAX_NAME or not name.isprintable():
        raise RunnerError(f"a runner name is printable text of at most {MAX_NAME} characters")
    return name


def check_runner_id(runner_id: str) -> str:
    """``runner_id`` if it has the shape of one."""
    if not RUNNER_ID.match(runner_id):
        raise UnknownRunner(f"no runner {runner_id!r}")
    return runner_id


@dataclass(frozen=True)
class Runner:
    runner_id: str
    name: str
    # None: platform-wide (every tenant).
    tenants: tuple[str, ...] | None
    secret_hash: bytes
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def platform_wide(self) -> bool:
        return self.tenants is None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def secret_matches(self, secret: str) -> bool:
        """Constant-time comparison of ``secret`` with the stored hash."""
        return hmac.compare_digest(self.secret_hash, hash_secret(secret))

    def owned_by(self, tenant_id: str) -> bool:
        """A tenant's own runner: created for that tenant alone (others are managed by operators)."""
        return self.tenants == (tenant_id,)

    def info(self) -> RunnerInfo:
        """The runner as administrators see it (no secret, no hash)."""
        return RunnerInfo(
            runner_id=self.runner_id,
            name=self.name,
            tenants=list(self.tenants or ()),
            platform_wide=self.platform_wide,
            inbox_prefix=runner_inbox_prefix(self.runner_id),
            created_at=self.created_at,
            revoked_at=self.revoked_at,
        )
