"""Suite-wide pytest configuration: the shared fixtures live in `tests/fixtures/`.

Integration tests ask for `database_url` (an emptied, migrated Postgres database) and `nats_url`
(a JetStream with no streams); see `tests/fixtures/infra.py` for where the servers come from.
Helpers: `from fixtures.waiting import wait_for, wait_for_async`, `from fixtures.infra import free_port`.
"""

import sys
from pathlib import Path

# Make `fixtures` importable whatever pytest's import mode or rootdir is.
_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

pytest_plugins = ["fixtures.infra", "fixtures.database", "fixtures.messaging", "fixtures.secured_nats"]
