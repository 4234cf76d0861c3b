"""What every vault use case needs, built once in app.py and passed to the use cases."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

# mypy reads the catalogue/ data directory as a namespace package shadowing catalogue.py.
from grantline.providers.catalogue import Catalogue, UnknownProviderError, parse_definition
from grantline.providers.definition import ProviderDefinition
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.outbox_relay import OutboxTable
from grantline.vault.adapters import tenant_provider_repository as tenant_provider_rows
from grantline.vault.adapters.data_key_store import DataKeyStore
from grantline.vault.adapters.provider_client import ProviderClient
from grantline.vault.settings import VaultSettings

# ``ServiceRuntime.driver_transaction``: a psycopg connection in a (pipelined) transaction that
# commits when the block ends and rolls back if it raises.
UnitOfWork = Callable[[], AbstractAsyncContextManager[DriverConnection]]
# ``ServiceRuntime.single_statement``: psycopg in autocommit, for the refresh path's one-statement
# units of work (``wake_relay=False`` for one that writes no event).
DriverUnitOfWork = Callable[..., AbstractAsyncContextManager[DriverConnection]]


class UnknownProvider(Exception):
    """Neither the catalogue nor the stored tenant definition knows this provider."""


@dataclass
class VaultContext:
    """Settings, catalogue, keys and the provider client; `transaction` opens one unit of work."""

    settings: VaultSettings
    catalogue: Catalogue
    keys: DataKeyStore
    providers: ProviderClient
    fingerprint_key: bytes
    outbox: OutboxTable
    transaction: UnitOfWork
    single_statement: DriverUnitOfWork
    # Replica identity, written as the refresh lease owner.
    instance_id: str

    @property
    def accept_unbound_seals(self) -> bool:
        """Whether sealed values of format version 1 (not bound to owner and provider) still open."""
        return not self.settings.require_bound_seals

    def definition(self, provider: str, stored: dict[str, Any] | None = None) -> ProviderDefinition:
        """The catalogue's definition; for a tenant's own provider, `stored` (read from the vault's tables).

        A catalogue id is never overridden, whatever a stored copy says.
        """
        found = self.catalogue.find(provider)
        if found is not None:
            return found
        if stored:
            return parse_definition(stored, source=f"tenant provider {provider!r}")
        raise UnknownProvider(provider)

    async def tenant_definition(
        self, conn: DriverConnection, tenant_id: str, provider: str
    ) -> tuple[ProviderDefinition, dict[str, Any] | None]:
        """The definition to act on and, for a tenant's own provider, its JSON (kept with a connection)."""
        found = self.catalogue.find(provider)
        if found is not None:
            return found, None
        stored = await tenant_provider_rows.definition(conn, tenant_id, provider)
        if stored is None:
            raise UnknownProvider(provider)
        return parse_definition(stored, source=f"tenant provider {provider!r}"), stored

    def provider_for(self, provider_or_app: str) -> str:
        """The provider id that serves an app (`gmail` -> `google`); unknown ids map to themselves."""
        try:
            return self.catalogue.provider_for_app(provider_or_app).id
        except UnknownProviderError:
            return provider_or_app
