from grantline.auth_gateway.adapters.tables import metadata
from grantline.common.db.migrations import run_alembic_env

run_alembic_env(metadata)
