"""Alembic migrations, one history per service, each in its own Postgres schema.

A service's ``migrations/env.py`` is three lines that call ``run_alembic_env`` with its metadata.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, create_engine, pool, text

from grantline.runtime.db.engine import sqlalchemy_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MigrationSet:
    """Where a service's migrations live and which schema they own."""

    service: str
    schema: str
    script_location: Path


def alembic_config(migrations: MigrationSet, database_url: str) -> Config:
    """An Alembic configuration for one service's migration history."""
    config = Config()
    config.set_main_option("script_location", str(migrations.script_location))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    config.attributes["grantline_schema"] = migrations.schema
    return config


def upgrade(migrations: MigrationSet, database_url: str, revision: str = "head") -> None:
    """Create the service's schema if needed and apply its migrations up to ``revision``."""
    engine = create_engine(sqlalchemy_url(database_url), poolclass=pool.NullPool)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{migrations.schema}"'))
    engine.dispose()
    command.upgrade(alembic_config(migrations, database_url), revision)
    log.info("migrated", extra={"service": migrations.service, "schema": migrations.schema})


def run_alembic_env(metadata: MetaData) -> None:
    """The body of a service's ``env.py``: run migrations online in the service's schema."""
    config = context.config
    schema = config.attributes.get("grantline_schema") or metadata.schema
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    with engine.connect() as connection:
        # Two instances migrating at once (two pods starting) must not interleave.
        connection.execute(text("SELECT pg_advisory_lock(hashtext(:s))"), {"s": f"migrate:{schema}"})
        connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                version_table="alembic_version",
                version_table_schema=schema,
                include_schemas=False,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(hashtext(:s))"), {"s": f"migrate:{schema}"})
            connection.commit()
