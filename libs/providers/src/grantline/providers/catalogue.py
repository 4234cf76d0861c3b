"""Loading the provider catalogue from YAML and answering questions about it.

The catalogue ships as package data in `definitions/` (one provider per YAML file, plus
`categories.yaml`; errors name them `catalogue/<file>`). Sandbox entries (`definitions/sandbox/`) are
only loaded when the caller says where the sandbox runs, so production deployments never list them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from grantline.providers.definition import AppSpec, ProviderDefinition

SANDBOX_URL_PLACEHOLDER = "{sandbox_url}"
CATEGORIES_FILE = "categories.yaml"


class CatalogueError(ValueError):
    """A definition is invalid or conflicts with another; the message names the source and field."""


class UnknownProviderError(KeyError):
    """No provider or app with that id."""

    def __str__(self) -> str:
        return f"unknown provider or app: {self.args[0]!r}"


@dataclass(frozen=True, slots=True)
class Category:
    """A group of providers that can satisfy a `category` requirement."""

    id: str
    name: str
    description: str = ""


def _format_validation_error(source: str, error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(definition)"
        # pydantic prefixes model-validator messages with "Value error, "; it says nothing useful.
        message = str(item["msg"]).removeprefix("Value error, ")
        problems.append(f"{path}: {message}")
    return f"{source}: " + "; ".join(problems)


def parse_definition(data: Mapping[str, Any], *, source: str = "definition") -> ProviderDefinition:
    """Validate one definition (a catalogue file's content or a tenant's JSON body)."""
    if not isinstance(data, Mapping):
        raise CatalogueError(f"{source}: a provider definition must be a mapping, got {type(data).__name__}")
    try:
        return ProviderDefinition.model_validate(dict(data))
    except ValidationError as exc:
        raise CatalogueError(_format_validation_error(source, exc)) from None


def _substitute(value: Any, placeholder: str, replacement: str) -> Any:
    if isinstance(value, str):
        return value.replace(placeholder, replacement)
    if isinstance(value, list):
        return [_substitute(item, placeholder, replacement) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, placeholder, replacement) for key, item in value.items()}
    return value


def _read_yaml(path: Traversable | Path, source: str) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{source}: not valid YAML: {exc}") from None


def _yaml_files(directory: Traversable | Path) -> list[Traversable | Path]:
    if not directory.is_dir():
        return []
    files = [
        entry
        for entry in directory.iterdir()
        if entry.is_file() and entry.name.endswith(".yaml") and entry.name != CATEGORIES_FILE
    ]
    return sorted(files, key=lambda entry: entry.name)


def _load_categories(directory: Traversable) -> dict[str, Category]:
    source = f"catalogue/{CATEGORIES_FILE}"
    raw = _read_yaml(directory / CATEGORIES_FILE, source)
    if not isinstance(raw, list):
        raise CatalogueError(f"{source}: expected a list of {{id, name}}")
    categories: dict[str, Category] = {}
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not {"id", "name"} <= item.keys():
            raise CatalogueError(f"{source}: entry {index} needs 'id' and 'name'")
        categories[item["id"]] = Category(item["id"], item["name"], item.get("description", ""))
    return categories


class Catalogue:
    """An immutable set of providers and categories, with the lookups the services need."""

    def __init__(
        self,
        providers: Iterable[ProviderDefinition],
        categories: Iterable[Category],
        *,
        sources: Mapping[str, str] | None = None,
    ) -> None:
        self._categories = {category.id: category for category in categories}
        self._providers: dict[str, ProviderDefinition] = {}
        self._app_owner: dict[str, str] = {}
        for definition in providers:
            self._add(definition, source=(sources or {}).get(definition.id, definition.id))

    def _add(self, definition: ProviderDefinition, *, source: str) -> None:
        if definition.id in self._providers or definition.id in self._app_owner:
            raise CatalogueError(f"{source}: id: {definition.id!r} is already used by a provider or app")
        for field, category in [("category", definition.category)] + [
            (f"apps.{i}.category", app.category) for i, app in enumerate(definition.apps)
        ]:
            if category not in self._categories:
                known = ", ".join(sorted(self._categories))
                raise CatalogueError(f"{source}: {field}: unknown category {category!r} (known: {known})")
        for index, app in enumerate(definition.apps):
            clash = app.id in self._app_owner or (app.id in self._providers and app.id != definition.id)
            if clash:
                raise CatalogueError(f"{source}: apps.{index}.id: {app.id!r} is already used elsewhere")
        self._providers[definition.id] = definition
        for app in definition.apps:
            self._app_owner[app.id] = definition.id

    def get(self, provider_id: str) -> ProviderDefinition:
        """The provider with this id; raises UnknownProviderError."""
        try:
            return self._providers[provider_id]
        except KeyError:
            raise UnknownProviderError(provider_id) from None

    def find(self, provider_id: str) -> ProviderDefinition | None:
        """The provider with this id, or None."""
        return self._providers.get(provider_id)

    def __contains__(self, provider_id: object) -> bool:
        return provider_id in self._providers

    def __len__(self) -> int:
        return len(self._providers)

    def provider_for_app(self, app_or_provider_id: str) -> ProviderDefinition:
        """The provider whose connection serves an app (`gmail` -> google); a provider id maps to itself."""
        if app_or_provider_id in self._providers:
            return self._providers[app_or_provider_id]
        owner = self._app_owner.get(app_or_provider_id)
        if owner is None:
            raise UnknownProviderError(app_or_provider_id)
        return self._providers[owner]

    def app(self, app_id: str) -> AppSpec | None:
        """The app entry with this id, or None (also None for a bare provider id)."""
        owner = self._app_owner.get(app_id)
        if owner is None:
            return None
        return next(app for app in self._providers[owner].apps if app.id == app_id)

    def providers(self, *, include_disabled: bool = True) -> list[ProviderDefinition]:
        """All providers, sorted by id."""
        return [
            self._providers[key]
            for key in sorted(self._providers)
            if include_disabled or self._providers[key].enabled
        ]

    def categories(self) -> list[Category]:
        """All categories in catalogue order."""
        return list(self._categories.values())

    def category(self, category_id: str) -> Category | None:
        """One category, or None."""
        return self._categories.get(category_id)

    def by_category(self, *, include_disabled: bool = True) -> dict[str, list[ProviderDefinition]]:
        """Category id -> providers whose own category, or one of whose apps' category, it is."""
        grouped: dict[str, list[ProviderDefinition]] = {category_id: [] for category_id in self._categories}
        for definition in self.providers(include_disabled=include_disabled):
            for category_id in sorted(definition.categories):
                grouped[category_id].append(definition)
        return grouped

    def available_in_category(self, category_id: str, *, include_disabled: bool = False) -> list[str]:
        """Ids that satisfy a category requirement: matching app ids, or the provider id itself."""
        available: list[str] = []
        for definition in self.providers(include_disabled=include_disabled):
            app_ids = [app.id for app in definition.apps if app.category == category_id]
            if app_ids:
                available.extend(app_ids)
            elif definition.category == category_id:
                available.append(definition.id)
        return available

    def with_tenant_definitions(self, definitions: Iterable[ProviderDefinition]) -> Catalogue:
        """A new catalogue with a tenant's own providers layered on top; built-in ids cannot be shadowed."""
        layered = Catalogue((), self._categories.values())
        for definition in self._providers.values():
            layered._add(definition, source=definition.id)
        for definition in definitions:
            layered._add(definition, source=f"tenant provider {definition.id!r}")
        return layered


def _load_directory(
    directory: Traversable | Path,
    label: str,
    sources: dict[str, str],
    substitutions: Mapping[str, str] | None = None,
) -> list[ProviderDefinition]:
    definitions = []
    for path in _yaml_files(directory):
        source = f"{label}/{path.name}"
        raw = _read_yaml(path, source)
        for placeholder, value in (substitutions or {}).items():
            raw = _substitute(raw, placeholder, value)
        definition = parse_definition(raw, source=source)
        if path.name != f"{definition.id}.yaml":
            raise CatalogueError(f"{source}: id: {definition.id!r} must match the file name")
        definitions.append(definition)
        sources.setdefault(definition.id, source)
    return definitions


def load_catalogue(extra_dirs: Iterable[str | Path] = (), sandbox_url: str | None = None) -> Catalogue:
    """Load the shipped catalogue, plus sandbox entries when `sandbox_url` is given, plus extra dirs."""
    package_dir = resources.files("grantline.providers") / "definitions"
    categories = _load_categories(package_dir)
    sources: dict[str, str] = {}
    definitions = _load_directory(package_dir, "catalogue", sources)
    if sandbox_url is not None:
        substitutions = {SANDBOX_URL_PLACEHOLDER: sandbox_url.rstrip("/")}
        definitions += _load_directory(package_dir / "sandbox", "catalogue/sandbox", sources, substitutions)
    for extra in extra_dirs:
        directory = Path(extra)
        if not directory.is_dir():
            raise CatalogueError(f"{directory}: not a directory")
        definitions += _load_directory(directory, str(directory), sources)
    return Catalogue(definitions, categories.values(), sources=sources)
