"""The roles this image can run: each service's runtime factory and migration set.

The CLI is the one place that knows every service; services never know each other.
"""

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from grantline.common.db.migrations import MigrationSet
from grantline.common.runtime import ServiceRuntime


@dataclass(frozen=True)
class Role:
    name: str
    module: str

    def migrations(self) -> MigrationSet:
        """This service's migration set."""
        return import_module(f"grantline.{self.module}.migrations").MIGRATIONS  # type: ignore[no-any-return]

    def runtime_factory(self) -> Callable[[], ServiceRuntime]:
        """The function that builds this service's runtime from the environment."""
        return import_module(f"grantline.{self.module}.app").create_runtime  # type: ignore[no-any-return]


ROLES: dict[str, Role] = {
    role.name: role
    for role in (
        Role("vault", "vault"),
        Role("audit", "audit"),
        Role("satisfaction", "satisfaction"),
        Role("refresher", "refresher"),
        Role("auth-gateway", "auth_gateway"),
        Role("runner-auth", "runner_auth"),
    )
}
