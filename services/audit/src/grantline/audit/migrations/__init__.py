"""Alembic migrations of the audit service (schema ``audit``)."""

from pathlib import Path

from grantline.common.db.migrations import MigrationSet

MIGRATIONS = MigrationSet(service="audit", schema="audit", script_location=Path(__file__).parent)
