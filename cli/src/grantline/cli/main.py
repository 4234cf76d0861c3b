"""The ``grantline`` command: one CLI in which each service is a role.

Kept small on purpose: ``grantline run <service>`` (every service process) goes straight to
service_entry without loading the other commands; everything else loads the full CLI (commands.py).
"""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    """Entry point of the ``grantline`` script."""
    arguments = sys.argv[1:]
    if len(arguments) == 2 and arguments[0] == "run" and not arguments[1].startswith("-"):
        from grantline.cli.service_entry import run_service

        sys.exit(run_service(arguments[1]))
    from grantline.cli.commands import app
    from grantline.runtime.nats.tls import NatsTlsError
    from grantline.runtime.settings import MissingProductionSetting

    try:
        app()
    except (NatsTlsError, MissingProductionSetting) as error:
        # A configuration mistake, not a crash: one sentence an operator can act on, no traceback.
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def __getattr__(name: str) -> Any:
    # `from grantline.cli.main import app` (tests, embedding) still finds the Typer application.
    if name == "app":
        from grantline.cli.commands import app

        return app
    raise AttributeError(name)


if __name__ == "__main__":
    main()
