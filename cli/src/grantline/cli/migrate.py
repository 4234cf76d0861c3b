"""``grantline migrate``: apply every service's migrations (each in its own schema)."""

import logging

from grantline.cli.services import ROLES
from grantline.common.db.migrations import upgrade

log = logging.getLogger(__name__)


def migrate_all(database_url: str, services: list[str] | None = None) -> None:
    """Bring every (or the named) service's schema to the newest revision."""
    for name in services or list(ROLES):
        upgrade(ROLES[name].migrations(), database_url)
