"""The roles this image can run: each service's runtime factory and migration set.

The CLI is the one place that knows every service; services never know each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `grantline dev`'s supervisor reads ROLES and must not load the service runtime
    from grantline.runtime.db.migrations import MigrationSet
    from grantline.runtime.service_runtime import ServiceRuntime


@dataclass(frozen=True)
class Role:
    name: str
    module: str
    # A stateless service (the proxy) has no schema and no migrations.
    stateful: bool = True
    # Makes HTTP calls of its own through aiohttp (providers, webhooks, upstream APIs). The others run
    # without aiohttp loaded at all (service_entry.leave_out_aiohttp).
    calls_out_over_http: bool = False

    def migrations(self) -> MigrationSet | None:
        """This service's migration set (None for a stateless service)."""
        if not self.stateful:
            return None
        return import_module(f"grantline.{self.module}.migrations").MIGRATIONS  # type: ignore[no-any-return]

    def runtime_factory(self) -> Callable[[], ServiceRuntime]:
        """The function that builds this service's runtime from the environment."""
        return import_module(f"grantline.{self.module}.app").create_runtime  # type: ignore[no-any-return]


ROLES: dict[str, Role] = {
    role.name: role
    for role in (
        Role("vault", "vault", calls_out_over_http=True),
        Role("audit", "audit"),
        Role("satisfaction", "satisfaction"),
        Role("refresher", "refresher"),
        Role("auth-gateway", "auth_gateway"),
        Role("runner-auth", "runner_auth"),
        Role("notifier", "notifier", calls_out_over_http=True),
        Role("proxy", "proxy", stateful=False, calls_out_over_http=True),
    )
}
