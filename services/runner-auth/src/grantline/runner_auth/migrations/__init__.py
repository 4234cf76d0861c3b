"""Alembic migrations of runner-auth (schema ``runner_auth``)."""

from pathlib import Path

from grantline.common.db.migrations import MigrationSet

MIGRATIONS = MigrationSet(service="runner-auth", schema="runner_auth", script_location=Path(__file__).parent)
