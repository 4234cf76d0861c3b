from grantline.common.db.migrations import run_alembic_env
from grantline.runner_auth.adapters.tables import metadata

run_alembic_env(metadata)
