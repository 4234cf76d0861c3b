"""The catalogue tables: seeding them from the provider catalogue and reading them back as a view.

Seeding is an upsert that never touches ``is_enabled`` of an existing row: an operator who disabled a
definition keeps it disabled across deployments and restarts. It runs from migration 0003 (sync) and at
every start-up (async), so a new catalogue release shows up without a new migration.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Insert, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

# mypy takes the package-data directory ``catalogue/`` for this module; Python does not.
from grantline.providers.catalogue import Catalogue, load_catalogue
from grantline.satisfaction.adapters.tables import connect_category, connect_definition
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


def seed_statements(catalogue: Catalogue) -> list[Insert]:
    """Upserts of every category and definition; existing ``is_enabled`` flags are left alone."""
    statements: list[Insert] = []
    categories = category_rows(catalogue)
    if categories:
        stmt = insert(connect_category).values(categories)
        statements.append(
            stmt.on_conflict_do_update(
                index_elements=[connect_category.c.id],
                set_={
                    "name": stmt.excluded.name,
                    "description": stmt.excluded.description,
                    "position": stmt.excluded.position,
                },
            )
        )
    definitions = definition_rows(catalogue)
    if definitions:
        stmt = insert(connect_definition).values(definitions)
        statements.append(
            stmt.on_conflict_do_update(
                index_elements=[connect_definition.c.id],
                set_={
                    "provider_id": stmt.excluded.provider_id,
                    "category_id": stmt.excluded.category_id,
                    "name": stmt.excluded.name,
                    "position": stmt.excluded.position,
                    "updated_at": func.now(),
                },
            )
        )
    return statements


def seed_catalogue_sync(connection: Connection, catalogue: Catalogue | None = None) -> None:
    """Seed the catalogue tables on a synchronous connection (used by the migration)."""
    for statement in seed_statements(catalogue or load_catalogue()):
        connection.execute(statement)


async def seed_catalogue(session: AsyncSession, catalogue: Catalogue) -> None:
    """Seed the catalogue tables in the session's transaction (used at start-up)."""
    for statement in seed_statements(catalogue):
        await session.execute(statement)


async def load_catalogue_view(session: AsyncSession) -> StaticCatalogue:
    """Read the catalogue tables into the in-memory view the report uses."""
    categories = (
        await session.execute(
            select(connect_category.c.id, connect_category.c.name).order_by(connect_category.c.position)
        )
    ).all()
    definitions = (
        await session.execute(
            select(
                connect_definition.c.id,
                connect_definition.c.category_id,
                connect_definition.c.provider_id,
                connect_definition.c.is_enabled,
            ).order_by(connect_definition.c.position, connect_definition.c.id)
        )
    ).all()
    return StaticCatalogue.of(
        {row.id: row.name for row in categories},
        [Definition(row.id, row.category_id, row.provider_id, row.is_enabled) for row in definitions],
    )


async def set_definition_enabled(session: AsyncSession, definition_id: str, enabled: bool) -> bool:
    """Enable or disable a definition; False when there is no such definition."""
    result = await session.execute(
        connect_definition.update()
        .where(connect_definition.c.id == definition_id)
        .values(is_enabled=enabled, updated_at=func.now())
        .returning(connect_definition.c.id)
    )
    return result.first() is not None


def configured_catalogue(sandbox_url: str | None = None, provider_dirs: list[Any] | None = None) -> Catalogue:
    """The catalogue this deployment serves: built-in, plus sandbox entries and extra directories if set."""
    return load_catalogue(extra_dirs=provider_dirs or (), sandbox_url=sandbox_url)
