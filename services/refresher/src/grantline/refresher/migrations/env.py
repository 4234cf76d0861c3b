from grantline.refresher.adapters.tables import metadata
from grantline.runtime.db.migrations import run_alembic_env

run_alembic_env(metadata)
