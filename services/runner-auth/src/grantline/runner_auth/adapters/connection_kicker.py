"""Closing a revoked runner's connections: CONNZ on every server of the cluster, then KICK by cid.

It talks to the servers' system account, through the one NATS user of that account
(``runner-auth-kick``), which may request only ``$SYS.REQ.SERVER.PING.CONNZ`` and
``$SYS.REQ.SERVER.<id>.KICK`` (deploy/nats/permissions.yaml).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass

from nats.aio.client import Client

from grantline.runtime.nats.permissions import GRANTLINE_ACCOUNT

log = logging.getLogger(__name__)

CONNZ_SUBJECT = "$SYS.REQ.SERVER.PING.CONNZ"
KICK_SUBJECT = "$SYS.REQ.SERVER.{server_id}.KICK"


@dataclass(frozen=True)
class RunnerConnection:
    server_id: str
    cid: int


class ConnectionKicker:
    """Finds and closes the open connections of a NATS user across the cluster."""

    def __init__(self, nc: Client, *, collect_seconds: float = 0.5, kick_timeout: float = 2.0) -> None:
        self._nc = nc
        # Every server answers a PING request; we cannot know how many will, so collect for a while.
        self._collect_seconds = collect_seconds
        self._kick_timeout = kick_timeout

    async def connections_of(self, user: str) -> list[RunnerConnection]:
        """The open connections whose user is ``user``, on every server that answers."""
        inbox = self._nc.new_inbox()
        found: list[RunnerConnection] = []
        subscription = await self._nc.subscribe(inbox)
        try:
            # "auth": true adds authorized_user to each connection; state 0 is "open".
            request = {"user": user, "acc": GRANTLINE_ACCOUNT, "auth": True, "state": 0, "limit": 1024}
            await self._nc.publish(CONNZ_SUBJECT, json.dumps(request).encode(), reply=inbox)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._collect_seconds
            while (remaining := deadline - loop.time()) > 0:
                try:
                    message = await subscription.next_msg(timeout=remaining)
                except TimeoutError:  # nats-py's TimeoutError is one too
                    break
                found.extend(_parse_connz(message.data, user))
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        return found

    async def kick(self, connection: RunnerConnection) -> bool:
        """Close one connection; False when the server says it is already gone."""
        reply = await self._nc.request(
            KICK_SUBJECT.format(server_id=connection.server_id),
            json.dumps({"cid": connection.cid}).encode(),
            timeout=self._kick_timeout,
        )
        error = (json.loads(reply.data or b"{}") or {}).get("error")
        return not error

    async def kick_user(self, user: str) -> int:
        """Close every connection of ``user``; the number closed."""
        closed = 0
        for connection in await self.connections_of(user):
            if await self.kick(connection):
                closed += 1
        if closed:
            log.info("runner connections closed", extra={"runner_id": user, "connections": closed})
        return closed


def _parse_connz(data: bytes, user: str) -> list[RunnerConnection]:
    try:
        response = json.loads(data)
        server_id = response["server"]["id"]
        connections = (response.get("data") or {}).get("connections") or []
    except (ValueError, KeyError, TypeError):
        log.warning("unreadable CONNZ reply")
        return []
    return [
        RunnerConnection(server_id=server_id, cid=int(c["cid"]))
        for c in connections
        # The server filters by user already; checking again costs nothing and guards a server
        # version that ignores an unknown filter.
        if c.get("authorized_user") == user and "cid" in c
    ]
