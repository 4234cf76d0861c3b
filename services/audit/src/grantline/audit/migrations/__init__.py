"""Alembic migrations of the audit service (schema ``audit``)."""

from pathlib import Path

from grantline.runtime.db.migrations import MigrationSet

MIGRATIONS = MigrationSet(service="audit", schema="audit", script_location=Path(__file__).parent)
