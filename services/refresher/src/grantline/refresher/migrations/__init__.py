"""Alembic migrations of the refresher (schema ``refresher``)."""

from pathlib import Path

from grantline.runtime.db.migrations import MigrationSet

MIGRATIONS = MigrationSet(service="refresher", schema="refresher", script_location=Path(__file__).parent)
