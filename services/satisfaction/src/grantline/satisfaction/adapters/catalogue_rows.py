"""The catalogue tables on psycopg: seeding them from the provider catalogue, reading them back as a
view, and an operator's enable or disable of a definition.

Seeding is an upsert that never touches ``is_enabled`` of an existing row: an operator who disabled a
definition keeps it disabled across deployments and restarts. It runs at every start-up, so a new
catalogue release shows up without a new migration (migration 0003 seeds with the same rows through
``catalogue_tables``, which the service never imports: it would load SQLAlchemy).
"""

from __future__ import annotations

import json
from typing import Any

# mypy takes the package-data directory ``catalogue/`` for this module; Python does not.
from grantline.providers.catalogue import Catalogue, load_catalogue
from grantline.runtime.db.driver import DriverConnection
from grantline.satisfaction.domain.catalogue import Definition, StaticCatalogue


def category_rows(catalogue: Catalogue) -> list[dict[str, Any]]:
    """One row per catalogue category, in catalogue order."""
    return [
        {"id": category.id, "name": category.name, "description": category.description, "position": index}
        for index, category in enumerate(catalogue.categories())
    ]


def definition_rows(catalogue: Catalogue) -> list[dict[str, Any]]:
    """One row per definition: each app of a provider, or the provider itself when it has no apps."""
    rows: list[dict[str, Any]] = []
    for provider in catalogue.providers():
        # Same rule as ``Catalogue.available_in_category``: apps stand for their provider.
        entries = [(app.id, app.name, app.category) for app in provider.apps] or [
            (provider.id, provider.name, provider.category)
        ]
        for definition_id, name, category_id in entries:
            rows.append(
                {
                    "id": definition_id,
                    "provider_id": provider.id,
                    "category_id": category_id,
                    "name": name,
                    "is_enabled": provider.enabled,
                    "position": len(rows),
                }
            )
    return rows


# Rows travel as one JSON parameter each (one statement per table, whatever the catalogue's size).
_SEED_CATEGORIES = (
    "INSERT INTO satisfaction.connect_category (id, name, description, position)"
    " SELECT id, name, description, position FROM json_to_recordset(CAST(%(rows)s AS json))"
    " AS new(id text, name text, description text, position integer)"
    " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description,"
    " position = EXCLUDED.position"
)
_SEED_DEFINITIONS = (
    "INSERT INTO satisfaction.connect_definition (id, provider_id, category_id, name, is_enabled, position)"
    " SELECT id, provider_id, category_id, name, is_enabled, position"
    " FROM json_to_recordset(CAST(%(rows)s AS json)) AS new(id text, provider_id text, category_id text,"
    " name text, is_enabled boolean, position integer)"
    " ON CONFLICT (id) DO UPDATE SET provider_id = EXCLUDED.provider_id,"
    " category_id = EXCLUDED.category_id, name = EXCLUDED.name, position = EXCLUDED.position,"
    " updated_at = now()"
)


async def seed_catalogue(conn: DriverConnection, catalogue: Catalogue) -> None:
    """Seed the catalogue tables in ``conn``'s transaction (used at start-up)."""
    categories = category_rows(catalogue)
    if categories:
        await conn.execute(_SEED_CATEGORIES, {"rows": json.dumps(categories)})
    definitions = definition_rows(catalogue)
    if definitions:
        await conn.execute(_SEED_DEFINITIONS, {"rows": json.dumps(definitions)})


_CATEGORIES = "SELECT id, name FROM satisfaction.connect_category ORDER BY position"
_DEFINITIONS = (
    "SELECT id, category_id, provider_id, is_enabled FROM satisfaction.connect_definition"
    " ORDER BY position, id"
)


async def load_catalogue_view(conn: DriverConnection) -> StaticCatalogue:
    """Read the catalogue tables into the in-memory view the report uses."""
    categories = await (await conn.execute(_CATEGORIES)).fetchall()
    definitions = await (await conn.execute(_DEFINITIONS)).fetchall()
    return StaticCatalogue.of(
        {category_id: name for category_id, name in categories},
        [Definition(*row) for row in definitions],
    )


_SET_ENABLED = (
    "UPDATE satisfaction.connect_definition SET is_enabled = %(enabled)s, updated_at = now()"
    " WHERE id = %(id)s RETURNING id"
)


async def set_definition_enabled(conn: DriverConnection, definition_id: str, enabled: bool) -> bool:
    """Enable or disable a definition; False when there is no such definition."""
    cursor = await conn.execute(_SET_ENABLED, {"id": definition_id, "enabled": enabled})
    return await cursor.fetchone() is not None


def configured_catalogue(sandbox_url: str | None = None, provider_dirs: list[Any] | None = None) -> Catalogue:
    """The catalogue this deployment serves: built-in, plus sandbox entries and extra directories if set."""
    return load_catalogue(extra_dirs=provider_dirs or (), sandbox_url=sandbox_url)
