"""``grantline run <service>``: one service process, loading that service and nothing else of the CLI.

Every service process starts here (in Kubernetes, docker-compose and under ``grantline dev``), so this
path imports no other command's modules (main.py sends ``run`` here before loading the CLI). A start-up
failure is one sentence on stderr and a non-zero exit; a traceback goes only to the service's log.
"""

from __future__ import annotations

import asyncio
import os
import sys


def use_uvloop() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass


def leave_out_aiohttp() -> None:
    """Keep aiohttp out of a service that makes no HTTP call through it (about 8 MB at rest).

    nats-py imports aiohttp, when it is installed, for its websocket transport, which Grantline never
    uses (its servers are nats:// or tls://), and takes an ImportError as "no websocket transport".
    ``None`` in ``sys.modules`` is Python's documented way to make an import raise that error. Code
    that did need aiohttp in such a service would fail at its first import, loudly, at start.
    """
    sys.modules.setdefault("aiohttp", None)  # type: ignore[arg-type]


def leave_out_pydantic_v1() -> None:
    """Keep pydantic's copy of its version 1 out of every service (about 1.7 MB at rest).

    Grantline declares no pydantic v1 model. FastAPI imports ``pydantic.v1`` only to check whether a
    route's annotation is such a model, and takes an ImportError as "no" (``fastapi._compat``).
    """
    sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]


def without_docstrings_argv(service: str) -> list[str] | None:
    """The command that runs ``service`` again under -OO, or None when this process should go on.

    Docstrings are for people reading the code; a running service has no use for them (the gateway
    serves its OpenAPI document from a file for that reason), and they are 2-6 MB of every process
    (benchmarks/memory). -OO leaves them out, and asserts too, which Grantline uses only to state what
    the code already guarantees (never to check input: docs/CONVENTIONS.md). A process already
    optimised, or started with PYTHONOPTIMIZE set (0 keeps both, for debugging), goes on as it is.
    """
    if sys.flags.optimize >= 2 or "PYTHONOPTIMIZE" in os.environ:
        return None
    return [sys.executable, "-OO", "-m", "grantline.cli.main", "run", service]


def run_service(service: str) -> int:
    """Run ``service`` until SIGTERM; returns the exit code."""
    from grantline.cli.services import ROLES

    if service not in ROLES:
        print(f"unknown service {service!r}; choose one of: {', '.join(ROLES)}", file=sys.stderr)
        return 2
    if (argv := without_docstrings_argv(service)) is not None:
        # Same process id, environment and open files: supervisors and signals see no difference.
        os.execv(argv[0], argv)  # noqa: S606 - this interpreter, a fixed module and a known role
    if not ROLES[service].calls_out_over_http:
        leave_out_aiohttp()
    leave_out_pydantic_v1()
    use_uvloop()
    from grantline.runtime.nats.tls import NatsTlsError
    from grantline.runtime.service_runtime import StartUpError
    from grantline.runtime.settings import KeySetError, MissingProductionSetting

    try:
        runtime = ROLES[service].runtime_factory()()
        asyncio.run(runtime.serve())
    except KeySetError as error:
        print(f"{service} cannot start: {error}", file=sys.stderr)
        return 2
    except StartUpError as error:
        print(f"error: {service} cannot start: {error}", file=sys.stderr)
        return 2
    except (NatsTlsError, MissingProductionSetting) as error:
        # A configuration mistake, not a crash: one sentence an operator can act on, no traceback.
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        # Not a known start-up problem: the traceback goes to the service's log (its standard output),
        # the terminal (standard error) gets one sentence naming only the error's type.
        _log_traceback(service)
        print(
            f"error: {service} stopped on an unexpected {type(error).__name__}; the traceback is in its log",
            file=sys.stderr,
        )
        return 1
    return 0


def _log_traceback(service: str) -> None:
    import logging
    import traceback

    if logging.getLogger().handlers:
        logging.getLogger("grantline.cli").exception("service stopped", extra={"service": service})
    else:
        traceback.print_exc(file=sys.stdout)
