from grantline.common.db.migrations import run_alembic_env
from grantline.refresher.adapters.tables import metadata

run_alembic_env(metadata)
