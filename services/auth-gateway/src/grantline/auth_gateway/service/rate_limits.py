"""Rate limits that hold across gateway replicas: what is limited, by what key, and the 429.

Every limit counts in a fixed window shared through Postgres (adapters/rate_limit_store). Guessing
limits (API keys, connect-session tokens, OAuth states) count only failures, and a caller over the
limit is refused before its credential is even looked at, so a right guess made while blocked
teaches nothing. Throughput limits (webhook deliveries, initiate calls) count every request.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from grantline.auth_gateway.adapters import rate_limit_store
from grantline.auth_gateway.domain.credentials import key_hint
from grantline.auth_gateway.service import tenants
from grantline.auth_gateway.service.principal import Principal
from grantline.auth_gateway.service.problems import Problem
from grantline.auth_gateway.settings import GatewaySettings
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.service_runtime import ServiceRuntime


@dataclass(frozen=True)
class Limit:
    name: str  # stable, part of the bucket and of the 429's `limit` field
    hits: int  # allowed per window
    window_seconds: int

    def bucket(self, key: str) -> str:
        # Keys may be long or caller-chosen (a key prefix, a provider name): hash them to a fixed size.
        return f"{self.name}:{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}"

    def guard(self, key: str) -> rate_limit_store.Guard:
        """This limit for `key` as a check that counts nothing (read with what it guards)."""
        return rate_limit_store.Guard(self.bucket(key), self.window_seconds, self.hits)


@dataclass(frozen=True)
class RateLimits:
    """The limits of this deployment, from its settings."""

    failed_auth_per_address: Limit
    failed_auth_per_key_prefix: Limit
    failed_state_per_address: Limit
    webhooks_per_address: Limit
    initiate_per_tenant: Limit

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> RateLimits:
        def limit(name: str) -> Limit:
            hits = getattr(settings, f"rate_limit_{name}")
            return Limit(name, hits, settings.rate_limit_window_seconds)

        return cls(
            failed_auth_per_address=limit("failed_auth_per_address"),
            failed_auth_per_key_prefix=limit("failed_auth_per_key_prefix"),
            failed_state_per_address=limit("failed_state_per_address"),
            webhooks_per_address=limit("webhooks_per_address"),
            initiate_per_tenant=limit("initiate_per_tenant"),
        )


def too_many(limit: Limit, seconds_left: int) -> Problem:
    """The 429 (problem details; the HTTP edge adds `Retry-After` from `retry_after`)."""
    return Problem(
        429,
        "rate_limited",
        f"too many requests ({limit.name}); retry after {seconds_left} s",
        extra={"retry_after": seconds_left, "limit": limit.name},
    )


async def count(conn: DriverConnection, limit: Limit, key: str) -> Problem | None:
    """Count one request against `limit` for `key`; the 429 to answer once the window's hits exceed it.

    Returned rather than raised, so the caller's transaction commits the hit before refusing.
    """
    counted = await rate_limit_store.count(conn, limit.bucket(key), limit.window_seconds)
    return too_many(limit, counted.seconds_left) if counted.hits > limit.hits else None


async def refuse_if_exhausted(conn: DriverConnection, limit: Limit, key: str) -> None:
    """Raise the 429 when `key` has used up `limit` this window (counts nothing)."""
    current = await rate_limit_store.current(conn, limit.bucket(key), limit.window_seconds)
    if current.hits >= limit.hits:
        raise too_many(limit, current.seconds_left)


async def authenticate(
    runtime: ServiceRuntime, limits: RateLimits, address: str, bearer: str | None
) -> Principal:
    """`tenants.authenticate`, refused with 429 once this address or key prefix failed too often.

    Every API request comes through here: the counters and the credential are one statement, one
    round trip, on an autocommit connection (a failure's count is a transaction of its own after it).
    """
    prefix = key_hint(bearer) if bearer else ""
    guarded = [(limits.failed_auth_per_address, address)]
    if prefix:
        guarded.append((limits.failed_auth_per_key_prefix, prefix))
    async with runtime.single_statement(wake_relay=False) as conn:
        try:
            guards = [limit.guard(key) for limit, key in guarded]
            return await tenants.authenticate(conn, bearer, guards=guards)
        except rate_limit_store.Exhausted as exhausted:
            raise too_many(guarded[exhausted.guard][0], exhausted.seconds_left) from None
        except Problem as problem:
            refused = problem
    if bearer:  # no credential at all is not a guess
        async with runtime.driver_transaction(wake_relay=False) as conn:
            over = await count(conn, limits.failed_auth_per_address, address)
            over = await count(conn, limits.failed_auth_per_key_prefix, prefix) or over
        if over is not None:
            raise over
    raise refused


async def admit(runtime: ServiceRuntime, limit: Limit, key: str) -> None:
    """Count a request in its own short transaction (no row lock held across the work); 429 when over."""
    # One upsert: autocommit makes it the whole transaction.
    async with runtime.single_statement(wake_relay=False) as conn:
        over = await count(conn, limit, key)
    if over is not None:
        raise over


async def check_failures(runtime: ServiceRuntime, limit: Limit, key: str) -> None:
    """Raise the 429 when `key` has failed `limit` times this window."""
    async with runtime.single_statement(wake_relay=False) as conn:
        await refuse_if_exhausted(conn, limit, key)


async def record_failure(runtime: ServiceRuntime, limit: Limit, key: str) -> Problem | None:
    """Count one failure of `key`; the 429 to answer instead when it went over `limit`."""
    async with runtime.single_statement(wake_relay=False) as conn:
        return await count(conn, limit, key)
