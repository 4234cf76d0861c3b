"""The provider catalogue as one tenant sees it: the shipped entries plus the tenant's own.

The vault keeps the tenant's own definitions (`vault.providers.*`): it acts only on definitions it
holds, so the gateway reads and writes them there and keeps no copy.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from grantline.auth_gateway.adapters.bus import Bus
from grantline.auth_gateway.service.problems import Problem, invalid, not_found
from grantline.contract import vault_admin
from grantline.contract.vault_admin import MAX_TENANT_PROVIDERS
from grantline.providers.catalogue import (
    Catalogue,
    CatalogueError,
    parse_definition,
)
from grantline.providers.definition import ProviderDefinition

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TenantProviders:
    """What the vault keeps of one tenant's catalogue: its own providers and the ones it switched off."""

    own: list[ProviderDefinition]
    disabled: frozenset[str]


class TenantCatalogue:
    """Builds each tenant's view of the catalogue from the shared one and the vault's tenant providers."""

    def __init__(self, base: Catalogue, bus: Bus, *, allow_private_urls: bool) -> None:
        self.base = base
        self._bus = bus
        self._allow_private_urls = allow_private_urls

    async def own_definitions(self, tenant_id: str) -> list[ProviderDefinition]:
        """The tenant's own providers, as the vault keeps them."""
        return (await self.tenant_providers(tenant_id)).own

    async def tenant_providers(self, tenant_id: str) -> TenantProviders:
        """The tenant's own providers and its switched-off ones (one question to the vault)."""
        reply = await self._bus.ask(
            vault_admin.SUBJECT_TENANT_PROVIDER_LIST,
            vault_admin.TenantProviderListRequest(tenant_id=tenant_id),
            vault_admin.TenantProviderList,
        )
        own: list[ProviderDefinition] = []
        for raw in reply.definitions:
            try:
                definition = parse_definition(raw, source="tenant provider")
            except CatalogueError:
                # Stored under an older schema: skip it rather than break the tenant's whole catalogue.
                log.warning("skipping a stored tenant provider that no longer validates")
                continue
            if definition.id not in self.base:
                own.append(definition)
        return TenantProviders(own=own, disabled=frozenset(reply.disabled))

    def layered(self, providers: TenantProviders) -> Catalogue:
        """The shared catalogue with a tenant's own providers on top, its switched-off ones disabled."""
        catalogue = self.base.with_tenant_definitions(providers.own)
        if not providers.disabled:
            return catalogue
        return Catalogue(
            [
                d.model_copy(update={"enabled": False}) if d.id in providers.disabled else d
                for d in catalogue.providers()
            ],
            catalogue.categories(),
        )

    async def for_tenant(self, tenant_id: str) -> Catalogue:
        """The catalogue as this tenant sees it (see ``layered``)."""
        return self.layered(await self.tenant_providers(tenant_id))

    async def provider(self, tenant_id: str, provider: str) -> ProviderDefinition:
        """One provider of the tenant's catalogue (``enabled`` False when switched off), or a 404 problem."""
        definition = (await self.for_tenant(tenant_id)).find(provider)
        if definition is None:
            raise not_found(f"provider {provider!r}")
        return definition

    async def set_enabled(self, tenant_id: str, provider: str, enabled: bool, actor: str) -> None:
        """Have the vault switch a provider on or off for the tenant (it announces the change)."""
        await self._bus.ask(
            vault_admin.SUBJECT_TENANT_PROVIDER_ENABLE,
            vault_admin.SetProviderEnabledRequest(
                tenant_id=tenant_id, provider=provider, enabled=enabled, actor=actor
            ),
            vault_admin.ProviderEnablement,
        )

    async def define(self, tenant_id: str, data: dict[str, Any]) -> tuple[ProviderDefinition, bool]:
        """Validate a tenant's own provider and have the vault store it; returns it and whether it is new."""
        try:
            definition = parse_definition(data, source="provider definition")
        except CatalogueError as error:
            raise invalid(str(error)) from None
        if definition.id in self.base:
            raise Problem(
                409, "conflict", f"provider id {definition.id!r} is a catalogue provider; pick another"
            )
        others = [d for d in await self.own_definitions(tenant_id) if d.id != definition.id]
        if len(others) >= MAX_TENANT_PROVIDERS:
            raise invalid(f"a tenant may define at most {MAX_TENANT_PROVIDERS} providers")
        try:
            self.base.with_tenant_definitions([*others, definition])
        except CatalogueError as error:
            raise invalid(str(error)) from None
        self._check_urls(definition)
        stored = await self._bus.ask(
            vault_admin.SUBJECT_TENANT_PROVIDER_PUT,
            vault_admin.PutTenantProviderRequest(
                tenant_id=tenant_id, definition=definition.model_dump(mode="json", exclude_none=True)
            ),
            vault_admin.TenantProviderInfo,
        )
        return definition, stored.created

    def _check_urls(self, definition: ProviderDefinition) -> None:
        texts = dict(definition.oauth.template_texts()) if definition.oauth else {}
        for field in ("api_base_url", "mcp_server_url"):
            value = getattr(definition, field)
            if value:
                texts[field] = value
        if definition.api_key is not None and definition.api_key.check is not None:
            texts["api_key.check.url"] = definition.api_key.check.url
        for where, text in texts.items():
            if not where.endswith("url"):
                continue
            parts = urlsplit(text)
            if self._allow_private_urls and parts.scheme in ("http", "https"):
                continue
            if parts.scheme != "https":
                raise invalid(f"{where} must be an https URL")
            host = parts.hostname or ""
            if host == "localhost" or host.endswith(".localhost"):
                raise invalid(f"{where} points at a loopback address")
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                continue  # a name; the vault checks what it resolves to before fetching
            if not address.is_global:
                raise invalid(f"{where} points at a private, loopback or link-local address")
