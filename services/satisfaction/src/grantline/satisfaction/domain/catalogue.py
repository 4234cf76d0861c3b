"""The read-only view of the provider catalogue that satisfaction rules need.

Ids: a *definition* is a catalogue entry a requirement may name (``gmail``, ``github``, ``google_drive``);
each is unlocked by a *provider* (``gmail`` -> ``google``, ``github`` -> ``github``). A specific
requirement may also name a provider id directly (``"google"``), so the view answers for provider ids
too: ``provider_of("google") == "google"``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
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
