"""Alembic migrations of the notifier (schema ``notifier``)."""

from pathlib import Path

from grantline.runtime.db.migrations import MigrationSet

MIGRATIONS = MigrationSet(service="notifier", schema="notifier", script_location=Path(__file__).parent)
