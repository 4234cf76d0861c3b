"""The read-only view of the provider catalogue that satisfaction rules need.

Ids: a *definition* is a catalogue entry a requirement may name (``gmail``, ``github``, ``google_drive``);
each is unlocked by a *provider* (``gmail`` -> ``google``, ``github`` -> ``github``). A specific
requirement may also name a provider id directly (``"google"``), so the view answers for provider ids
too: ``provider_of("google") == "google"``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol


class CatalogueView(Protocol):
    """What the report needs to know about categories and definitions (tenant-specific, enabled flags)."""

    def category_of(self, definition_id: str) -> str | None:
        """The category id of a definition; None when unknown or when a provider id spans categories."""
        ...

    def category_name(self, category_id: str) -> str | None:
        """The human name of a category (``"Email"``); None when the category is unknown."""
        ...

    def definitions_in(self, category_id: str) -> list[str]:
        """The enabled definitions of a category, in catalogue order; empty when unknown."""
        ...

    def provider_of(self, definition_id: str) -> str | None:
        """The provider a definition (or a provider id) is connected through; None when unknown."""
        ...

    def is_enabled(self, definition_id: str) -> bool:
        """Whether a definition (or a provider id) is enabled for the tenant; False when unknown."""
        ...


class TenantCatalogues(Protocol):
    """Each tenant's catalogue view: the shared catalogue plus the tenant's own providers."""

    def for_tenant(self, tenant_id: str) -> CatalogueView:
        """The view one tenant's requirements are read against."""
        ...


@dataclass(frozen=True)
class Definition:
    """One catalogue row: a definition, its category and the provider that unlocks it."""

    id: str
    category_id: str
    provider: str
    enabled: bool = True


@dataclass(frozen=True)
class StaticCatalogue:
    """An in-memory ``CatalogueView`` built from catalogue rows (e.g. loaded once from the tables)."""

    categories: dict[str, str]
    definitions: tuple[Definition, ...]
    _by_id: dict[str, Definition] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {definition.id: definition for definition in self.definitions})

    @classmethod
    def of(cls, categories: dict[str, str], definitions: Iterable[Definition]) -> StaticCatalogue:
        """Build a catalogue from category names and definition rows."""
        return cls(categories=dict(categories), definitions=tuple(definitions))

    def category_of(self, definition_id: str) -> str | None:
        """The category id of a definition; None for unknown ids and bare provider ids."""
        definition = self._by_id.get(definition_id)
        return definition.category_id if definition else None

    def category_name(self, category_id: str) -> str | None:
        """The human name of a category; None when unknown."""
        return self.categories.get(category_id)

    def definitions_in(self, category_id: str) -> list[str]:
        """The enabled definitions of a category in catalogue order."""
        return [d.id for d in self.definitions if d.category_id == category_id and d.enabled]

    def provider_of(self, definition_id: str) -> str | None:
        """The owning provider of a definition; a provider id maps to itself; None when unknown."""
        definition = self._by_id.get(definition_id)
        if definition is not None:
            return definition.provider
        if any(d.provider == definition_id for d in self.definitions):
            return definition_id
        return None

    def is_enabled(self, definition_id: str) -> bool:
        """A definition's flag; a bare provider id is enabled while any of its definitions is."""
        definition = self._by_id.get(definition_id)
        if definition is not None:
            return definition.enabled
        return any(d.provider == definition_id and d.enabled for d in self.definitions)


@dataclass(frozen=True)
class TenantProvider:
    """A tenant's own provider as requirements see it: its id, category and the apps it unlocks."""

    id: str
    category_id: str
    apps: tuple[tuple[str, str], ...] = ()  # (app id, category id)

    def definitions(self) -> list[Definition]:
        """Its catalogue rows: each app stands for the provider, or the provider itself when it has none."""
        entries = self.apps or ((self.id, self.category_id),)
        return [Definition(definition_id, category_id, self.id) for definition_id, category_id in entries]


@dataclass(frozen=True)
class TenantCatalogueState:
    """How one tenant's catalogue differs from the shared one: its own providers, its switched-off ones."""

    own: tuple[TenantProvider, ...] = ()
    disabled: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.own or self.disabled)


def tenant_view(
    base: StaticCatalogue, own: Iterable[TenantProvider], disabled: frozenset[str] = frozenset()
) -> StaticCatalogue:
    """The shared catalogue with one tenant's own providers after it, and the providers it switched off
    disabled; an id the shared catalogue already uses keeps its shared meaning (a tenant can never
    shadow a catalogue entry)."""
    taken = {d.id for d in base.definitions} | {d.provider for d in base.definitions}
    added: list[Definition] = []
    for provider in own:
        if provider.id in taken:
            continue
        rows = [d for d in provider.definitions() if d.id not in taken and d.category_id in base.categories]
        taken.update(d.id for d in rows)
        taken.add(provider.id)
        added += rows
    every = (*base.definitions, *added)
    if disabled:
        every = tuple(replace(d, enabled=False) if d.provider in disabled else d for d in every)
    return StaticCatalogue.of(base.categories, every)
