"""The provider catalogue as one tenant sees it: the shipped entries plus the tenant's own."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from grantline.auth_gateway.adapters import tenant_store
from grantline.auth_gateway.service.problems import Problem, invalid, not_found
from grantline.providers.catalogue import (
    Catalogue,
    CatalogueError,
    parse_definition,
)
from grantline.providers.definition import ProviderDefinition

log = logging.getLogger(__name__)

MAX_TENANT_PROVIDERS = 200


class TenantCatalogue:
    """Builds each tenant's view of the catalogue from the shared one and the `tenant_providers` table."""

    def __init__(self, base: Catalogue, *, allow_private_urls: bool) -> None:
        self.base = base
        self._allow_private_urls = allow_private_urls

    async def for_tenant(self, session: AsyncSession, tenant_id: str) -> Catalogue:
        """The shared catalogue with this tenant's own providers layered on top."""
        own: list[ProviderDefinition] = []
        for raw in await tenant_store.tenant_provider_definitions(session, tenant_id):
            try:
                definition = parse_definition(raw, source="tenant provider")
            except CatalogueError:
                # Stored under an older schema: skip it rather than break the tenant's whole catalogue.
                log.warning("skipping a stored tenant provider that no longer validates")
                continue
            if definition.id not in self.base:
                own.append(definition)
        return self.base.with_tenant_definitions(own)

    async def own_ids(self, session: AsyncSession, tenant_id: str) -> set[str]:
        """Ids of the tenant's own providers."""
        return {
            str(raw.get("id")) for raw in await tenant_store.tenant_provider_definitions(session, tenant_id)
        }

    async def provider(self, session: AsyncSession, tenant_id: str, provider: str) -> ProviderDefinition:
        """One provider of the tenant's catalogue, or a 404 problem."""
        definition = (await self.for_tenant(session, tenant_id)).find(provider)
        if definition is None:
            raise not_found(f"provider {provider!r}")
        return definition

    async def own_definition_json(
        self, session: AsyncSession, tenant_id: str, provider: str
    ) -> dict[str, Any] | None:
        """The tenant's own definition of `provider` as JSON (sent along to the vault), or None."""
        for raw in await tenant_store.tenant_provider_definitions(session, tenant_id):
            if raw.get("id") == provider:
                return raw
        return None

    async def define(
        self, session: AsyncSession, tenant_id: str, data: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Validate and store a tenant's own provider; returns its public view and whether it is new."""
        try:
            definition = parse_definition(data, source="provider definition")
        except CatalogueError as error:
            raise invalid(str(error)) from None
        if definition.id in self.base:
            raise Problem(
                409, "conflict", f"provider id {definition.id!r} is a catalogue provider; pick another"
            )
        current = await self.for_tenant(session, tenant_id)
        existing = await self.own_ids(session, tenant_id)
        if definition.id not in existing and len(existing) >= MAX_TENANT_PROVIDERS:
            raise invalid(f"a tenant may define at most {MAX_TENANT_PROVIDERS} providers")
        others = [current.get(pid) for pid in existing if pid != definition.id and pid in current]
        try:
            self.base.with_tenant_definitions([*others, definition])
        except CatalogueError as error:
            raise invalid(str(error)) from None
        self._check_urls(definition)
        stored = definition.model_dump(mode="json", exclude_none=True)
        created = await tenant_store.upsert_tenant_provider(
            session, tenant_id=tenant_id, provider=definition.id, definition=stored
        )
        return definition.public_view(), created

    def _check_urls(self, definition: ProviderDefinition) -> None:
        texts = dict(definition.oauth.template_texts()) if definition.oauth else {}
        for field in ("api_base_url", "mcp_server_url"):
            value = getattr(definition, field)
            if value:
                texts[field] = value
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
