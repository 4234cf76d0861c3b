"""The catalogue tables seeded through SQLAlchemy, for migration 0003 and the CLI, which have it loaded.

The service itself seeds and reads them with ``catalogue_rows`` on psycopg and never imports this
module. Both seed the same rows (``catalogue_rows.category_rows`` / ``definition_rows``) with the same
rule: an upsert that never touches ``is_enabled`` of an existing row, so an operator who disabled a
definition keeps it disabled across deployments and restarts.
"""

from __future__ import annotations

from sqlalchemy import Connection, Insert, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.providers.catalogue import Catalogue
from grantline.runtime.db.driver import driver_connection
from grantline.satisfaction.adapters import catalogue_rows
from grantline.satisfaction.adapters.catalogue_rows import (
    category_rows,
    configured_catalogue,
    definition_rows,
)
from grantline.satisfaction.adapters.tables import connect_category, connect_definition

__all__ = ["configured_catalogue", "seed_catalogue_sync", "seed_statements", "set_definition_enabled"]


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
    for statement in seed_statements(catalogue or configured_catalogue()):
        connection.execute(statement)


async def set_definition_enabled(session: AsyncSession, definition_id: str, enabled: bool) -> bool:
    """``catalogue_rows.set_definition_enabled`` in a SQLAlchemy session's transaction (the CLI's)."""
    return await catalogue_rows.set_definition_enabled(
        await driver_connection(session), definition_id, enabled
    )
