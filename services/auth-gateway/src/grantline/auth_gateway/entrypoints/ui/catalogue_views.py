"""The catalogue as the pages show it: provider names, scope descriptions, who can be connected."""

from __future__ import annotations

from dataclasses import dataclass

from grantline.auth_gateway.service.views import (
    CatalogueView,
    ProviderView,
    default_scope_ids,
    is_connectable,
)


@dataclass(frozen=True)
class ScopeLine:
    id: str
    description: str


class CataloguePages:
    """Lookups the pages make on one `CatalogueView`."""

    def __init__(self, view: CatalogueView) -> None:
        self.view = view
        self.providers = {p.id: p for p in view.providers}

    def name(self, provider: str) -> str:
        """The provider's display name (its id when unknown)."""
        found = self.providers.get(provider)
        return found.name if found else provider

    def scope_lines(self, provider: str, scopes: list[str]) -> list[ScopeLine]:
        """Each scope with its human description (the scope itself when the catalogue has none)."""
        found = self.providers.get(provider)
        described = {s.id: s.description for s in found.scopes} if found else {}
        return [ScopeLine(scope, described.get(scope, "")) for scope in scopes]

    def key_providers(self) -> list[ProviderView]:
        """Enabled providers that take API keys (an admin stores the key; no provider app needed)."""
        return [p for p in self.view.providers if p.auth == "api_key" and p.enabled]

    def connectable(self) -> list[ProviderView]:
        """OAuth providers, enabled, with a provider app (or all of them when the vault did not say)."""
        return [p for p in self.view.providers if is_connectable(p)]

    def default_scopes(self, provider: str) -> list[str]:
        """The catalogue's default scopes for a provider."""
        found = self.providers.get(provider)
        return default_scope_ids(found) if found else []
