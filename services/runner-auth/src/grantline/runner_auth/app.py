"""Wiring of runner-auth: the auth callout, the admin requests, and the revocation sweep."""

from __future__ import annotations

import contextlib
import logging

import nats
from nats.aio.client import Client

from grantline.runner_auth.adapters.connection_kicker import ConnectionKicker
from grantline.runner_auth.adapters.issuer_key import load_issuer
from grantline.runner_auth.entrypoints.admin_requests import serve_runner_admin
from grantline.runner_auth.entrypoints.auth_callout import serve_auth_callout
from grantline.runner_auth.entrypoints.revocation_sweep import revocation_sweep
from grantline.runner_auth.settings import RunnerAuthSettings
from grantline.runtime.nats.connection import connect_options
from grantline.runtime.service_runtime import ServiceRuntime

log = logging.getLogger(__name__)


class KickConnection:
    """The second NATS connection, as the system-account user that can only CONNZ and KICK."""

    def __init__(self, settings: RunnerAuthSettings) -> None:
        self._settings = settings
        self._nc: Client | None = None
        self.kicker: ConnectionKicker | None = None

    async def open(self) -> None:
        settings = self._settings
        if settings.runner_auth_kick_password is None:
            log.warning(
                "no kick credentials (GRANTLINE_RUNNER_AUTH_KICK_PASSWORD): revoked runners stay connected"
            )
            return
        options = connect_options(settings, name="runner-auth-kick")
        options.update(
            user=settings.runner_auth_kick_user,
            password=settings.runner_auth_kick_password.get_secret_value(),
            inbox_prefix=settings.runner_auth_kick_inbox_prefix,
        )
        options.pop("user_credentials", None)
        self._nc = await nats.connect(**options)
        self.kicker = ConnectionKicker(self._nc, collect_seconds=settings.runner_auth_connz_collect_seconds)

    async def close(self) -> None:
        self.kicker = None
        if self._nc is not None:
            # Closed, not drained: a kick in flight is retried by the next sweep (of another replica).
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None


def create_runtime(settings: RunnerAuthSettings | None = None) -> ServiceRuntime:
    """Build the runner-auth runtime."""
    settings = settings or RunnerAuthSettings()
    # Resolved first: a deployment without its issuer key fails at start-up, not at the first runner.
    issuer = load_issuer(settings)
    runtime = ServiceRuntime(settings)
    kick = KickConnection(settings)
    runtime.on_start(kick.open)
    runtime.on_stop(kick.close)
    serve_auth_callout(runtime, issuer, user_jwt_ttl_seconds=settings.runner_auth_user_jwt_ttl_seconds)
    serve_runner_admin(runtime, _LateKicker(kick))
    if settings.runner_auth_sweep_interval_seconds > 0:
        runtime.add_background_task(
            revocation_sweep(
                runtime, lambda: kick.kicker, interval_seconds=settings.runner_auth_sweep_interval_seconds
            )
        )
    return runtime


class _LateKicker:
    """The kicker once the kick connection is open (the admin handlers are wired before start)."""

    def __init__(self, kick: KickConnection) -> None:
        self._kick = kick

    async def kick_user(self, user: str) -> int:
        if self._kick.kicker is None:
            return 0
        return await self._kick.kicker.kick_user(user)
