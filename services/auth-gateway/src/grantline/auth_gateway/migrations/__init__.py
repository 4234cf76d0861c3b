"""Alembic migrations of the auth gateway (schema ``gateway``)."""

from pathlib import Path

from grantline.runtime.db.migrations import MigrationSet

MIGRATIONS = MigrationSet(service="auth-gateway", schema="gateway", script_location=Path(__file__).parent)
