"""Use cases for tenants and their API keys (they work on the caller's connection; the caller commits)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from grantline.auth_gateway.adapters import flow_store, tenant_store
from grantline.auth_gateway.adapters.outbox import OUTBOX
from grantline.auth_gateway.adapters.rate_limit_store import Guard, refuse_if_exhausted
from grantline.auth_gateway.domain.credentials import (
    credential_hash,
    is_connect_session_token,
    key_hint,
    looks_like_credential,
    new_api_key,
)
from grantline.auth_gateway.domain.return_to import ReturnToError, check_allow_entry
from grantline.auth_gateway.service.principal import Principal
from grantline.auth_gateway.service.problems import Problem
from grantline.contract.audit import AuditAction, AuditRecord
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.outbox_relay import write_events

# Development front ends run on changing loopback ports.
DEV_ALLOW_LIST = ["http://127.0.0.1:*", "http://localhost:*"]


class TenantError(ValueError):
    """A tenant command cannot be carried out; the message says why."""


def _checked_allow_list(entries: list[str]) -> list[str]:
    try:
        return [check_allow_entry(entry) for entry in entries]
    except ReturnToError as error:
        raise TenantError(str(error)) from None


async def create_tenant(conn: DriverConnection, name: str, allow_list: list[str]) -> tenant_store.Tenant:
    """Create a tenant with a unique name."""
    name = name.strip()
    if not name or len(name) > 200:
        raise TenantError("a tenant name is 1 to 200 characters")
    if await tenant_store.tenant_by_name(conn, name) is not None:
        raise TenantError(f"a tenant named {name!r} exists already")
    tenant = await tenant_store.insert_tenant(
        conn, name=name, return_to_allow_list=_checked_allow_list(allow_list)
    )
    return tenant


async def find_tenant(conn: DriverConnection, name_or_id: str) -> tenant_store.Tenant:
    """A tenant by name or id."""
    tenant = await tenant_store.tenant_by_name(conn, name_or_id)
    tenant = tenant or await tenant_store.tenant_by_id(conn, name_or_id)
    if tenant is None:
        raise TenantError(f"no tenant named {name_or_id!r}")
    return tenant


async def set_allow_list(conn: DriverConnection, name_or_id: str, allow_list: list[str]) -> None:
    """Replace a tenant's `return_to` allow-list."""
    tenant = await find_tenant(conn, name_or_id)
    await tenant_store.set_allow_list(conn, tenant.tenant_id, _checked_allow_list(allow_list))


async def add_api_key(conn: DriverConnection, tenant_id: str, key: str, *, actor: str) -> str:
    """Store a key's hash for a tenant and record it in the audit log; returns the key id."""
    if not looks_like_credential(key) or is_connect_session_token(key):
        raise TenantError("an API key is 'glk_' followed by at least 16 url-safe characters")
    existing = await tenant_store.api_key_by_hash(conn, credential_hash(key))
    if existing is not None:
        if existing.tenant_id != tenant_id or existing.revoked_at is not None:
            raise TenantError("that API key cannot be used for this tenant")
        return existing.key_id
    key_id = await tenant_store.insert_api_key(
        conn, tenant_id=tenant_id, key_hash=credential_hash(key), hint=key_hint(key)
    )
    await _audit_key(conn, tenant_id, key_id, AuditAction.API_KEY_CREATED, actor)
    return key_id


async def create_api_key(conn: DriverConnection, name_or_id: str, *, actor: str = "cli") -> tuple[str, str]:
    """Mint a key for a tenant: `(key_id, key)`; the key is shown once and never stored."""
    tenant = await find_tenant(conn, name_or_id)
    key = new_api_key()
    return await add_api_key(conn, tenant.tenant_id, key, actor=actor), key


async def revoke_api_key(conn: DriverConnection, key_id: str, *, actor: str = "cli") -> None:
    """Revoke a key by id; requests with it are refused from the next one on."""
    tenant_id = await tenant_store.revoke_api_key(conn, key_id)
    if tenant_id is None:
        raise TenantError(f"no active API key {key_id!r}")
    await _audit_key(conn, tenant_id, key_id, AuditAction.API_KEY_REVOKED, actor)


async def _audit_key(conn: DriverConnection, tenant_id: str, key_id: str, action: str, actor: str) -> None:
    record = AuditRecord(tenant_id=tenant_id, actor=actor, action=action, detail={"key_id": key_id})
    await write_events(conn, OUTBOX, [record])


async def ensure_tenant_with_key(conn: DriverConnection, *, name: str, api_key: str) -> str:
    """The tenant named `name`, created with the dev allow-list if missing, holding `api_key`."""
    tenant = await tenant_store.tenant_by_name(conn, name)
    if tenant is None:
        tenant = await create_tenant(conn, name, DEV_ALLOW_LIST)
    await add_api_key(conn, tenant.tenant_id, api_key, actor="bootstrap")
    return tenant.tenant_id


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", detail)


async def authenticate(
    conn: DriverConnection,
    bearer: str | None,
    *,
    now: datetime | None = None,
    guards: Sequence[Guard] = (),
) -> Principal:
    """The caller a bearer value (API key or connect-session token) stands for, or raise 401.

    `guards` (failure counters) are checked first, in the same statement as the lookup: when one is
    used up the credential is not looked at and `rate_limit_store.Exhausted` is raised.
    """
    if not bearer or not looks_like_credential(bearer):
        await refuse_if_exhausted(conn, guards)
        if not bearer:
            raise _unauthorized("send 'Authorization: Bearer <API key>'")
        raise _unauthorized("the bearer credential is not valid")
    hashed = credential_hash(bearer)
    if is_connect_session_token(bearer):
        record = await flow_store.connect_session_by_hash(conn, hashed, unless_exhausted=guards)
        if record is None or record.expires_at <= (now or datetime.now(UTC)):
            raise _unauthorized("the connect session is unknown or expired")
        return Principal(
            record.tenant_id,
            "connect_session",
            record.user_id,
            record.session_id,
            record.providers,
            record.provider_apps,
        )
    key = await tenant_store.api_key_by_hash(conn, hashed, unless_exhausted=guards)
    if key is None or key.revoked_at is not None:
        raise _unauthorized("the API key is unknown or revoked")
    return Principal(key.tenant_id, "api_key", None, key.key_id)
