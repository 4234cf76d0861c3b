"""Alembic migrations of the satisfaction service (schema ``satisfaction``)."""

from pathlib import Path

from grantline.runtime.db.migrations import MigrationSet

MIGRATIONS = MigrationSet(
    service="satisfaction", schema="satisfaction", script_location=Path(__file__).parent
)
