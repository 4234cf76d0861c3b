"""Alembic migrations of runner-auth (schema ``runner_auth``)."""

from pathlib import Path

from grantline.runtime.db.migrations import MigrationSet

MIGRATIONS = MigrationSet(service="runner-auth", schema="runner_auth", script_location=Path(__file__).parent)
