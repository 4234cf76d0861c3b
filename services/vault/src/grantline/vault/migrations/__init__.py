"""Alembic migrations of the vault (schema ``vault``)."""

from pathlib import Path

from grantline.runtime.db.migrations import MigrationSet

MIGRATIONS = MigrationSet(service="vault", schema="vault", script_location=Path(__file__).parent)
