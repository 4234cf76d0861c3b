"""Making revocation stick: close the open connections of revoked runners.

A revoked runner cannot reconnect (the callout refuses it), but a connection it already has stays
open until the server is told to close it. The admin entrypoint kicks right after committing a
revocation; the sweep also runs every second or so, which covers revocations made from the CLI,
a runner-auth replica that died between commit and kick, and a connection that was authorised
just before the revocation committed.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Protocol

from grantline.runner_auth.adapters import runner_repository as repository
from grantline.runtime.db.driver import DriverConnection

log = logging.getLogger(__name__)

# How long after a revocation the sweep keeps looking for the runner's connections.
REVOCATION_GRACE = timedelta(seconds=30)


class Kicker(Protocol):
    async def kick_user(self, user: str) -> int: ...


class Consumers(Protocol):
    async def delete(self, runner_id: str) -> None: ...


async def enforce_revocations(
    conn: DriverConnection, kicker: Kicker, consumers: Consumers | None = None
) -> int:
    """Kick the connections of every revoked runner still within its grace, and delete its consumer of
    outcomes (what it had not pulled is never delivered); connections closed."""
    started = await repository.transaction_time(conn)
    runner_ids = await repository.revocations_to_enforce(conn, grace=REVOCATION_GRACE)
    closed = 0
    done: list[str] = []
    for runner_id in runner_ids:
        try:
            closed += await kicker.kick_user(runner_id)
            if consumers is not None:
                await consumers.delete(runner_id)
        except Exception as error:  # NATS unreachable: keep it on the list for the next sweep
            log.warning("kick failed", extra={"runner_id": runner_id, "error": type(error).__name__})
            continue
        done.append(runner_id)
    await repository.mark_kick_checked(conn, done, started)
    return closed
