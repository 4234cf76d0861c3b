"""Use cases of the runner registry: create, list, revoke (the entrypoint commits)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from grantline.runner_auth.adapters import runner_repository as repository
from grantline.runner_auth.domain.runner import (
    Runner,
    UnknownRunner,
    check_name,
    check_runner_id,
    check_tenants,
    hash_secret,
    new_runner_id,
    new_secret,
)
from grantline.runtime.db.driver import DriverConnection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IssuedRunner:
    runner: Runner
    # Shown once to whoever created the runner; only its hash is stored.
    secret: SecretStr


async def create_runner(
    conn: DriverConnection,
    *,
    tenants: Sequence[str] | None,
    name: str = "",
    created_by: str = "cli",
) -> IssuedRunner:
    """A new runner for ``tenants`` (``None``: platform-wide) and its secret."""
    scope = None if tenants is None else check_tenants(tenants)
    secret = new_secret()
    runner = await repository.add_runner(
        conn,
        runner_id=new_runner_id(),
        name=check_name(name),
        tenants=scope,
        secret_hash=hash_secret(secret),
        created_by=created_by,
    )
    log.info(
        "runner created",
        extra={
            "runner_id": runner.runner_id,
            "platform_wide": runner.platform_wide,
            "tenant_count": len(runner.tenants or ()),
            "actor": created_by,
        },
    )
    return IssuedRunner(runner=runner, secret=SecretStr(secret))


async def list_runners(
    conn: DriverConnection, *, tenant_id: str | None = None, include_revoked: bool = False
) -> list[Runner]:
    """Every runner (operators), or a tenant's own runners (created for it alone)."""
    return await repository.list_runners(conn, only_tenant=tenant_id, include_revoked=include_revoked)


async def revoke_runner(
    conn: DriverConnection, runner_id: str, *, tenant_id: str | None = None, revoked_by: str = "cli"
) -> Runner:
    """Revoke a runner; a tenant may revoke only its own. Its connections are kicked after commit."""
    check_runner_id(runner_id)
    existing = await repository.get_runner(conn, runner_id)
    if existing is None or (tenant_id is not None and not existing.owned_by(tenant_id)):
        # A tenant cannot tell another tenant's runner from a missing one.
        raise UnknownRunner(f"no runner {runner_id!r}")
    revoked = await repository.mark_revoked(conn, runner_id, revoked_by=revoked_by)
    assert revoked is not None  # we just read it in this transaction
    log.info("runner revoked", extra={"runner_id": runner_id, "actor": revoked_by})
    return revoked
