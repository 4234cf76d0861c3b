from grantline.runtime.db.migrations import run_alembic_env
from grantline.vault.adapters.tables import metadata

run_alembic_env(metadata)
