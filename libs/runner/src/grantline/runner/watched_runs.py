"""The runs a runner client follows, and what it has heard of each: outcome, revocations, grant.

Outcomes and revocations reach a client twice (live, and again from the runner's durable consumer);
``WatchedRuns.route`` hands each event to the run it names once, and ``wait`` lets a caller await a
run's outcome.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

from grantline.contract.registry import decode_event
from grantline.contract.runs import RunAdmitted, RunConnectionRevoked, RunHeld

RunOutcome = RunAdmitted | RunHeld

# The events a client subscribes to for each tenant it requests runs of.
FOLLOWED = (RunAdmitted, RunHeld, RunConnectionRevoked)


class RunCancelled(Exception):
    """The run was cancelled (``RunnerClient.cancel``) while something waited for its admission."""


@dataclass
class WatchedRun:
    tenant_id: str
    outcome: RunOutcome | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    revocations: list[RunConnectionRevoked] = field(default_factory=list)
    finished: bool = False
    # The run's current grant: the admission's, then each renewal's.
    grant: str = ""
    # Ids of the events seen: each arrives live and again from the runner's durable consumer.
    seen: set[str] = field(default_factory=set)


class WatchedRuns(dict[str, WatchedRun]):
    """The followed runs by run id."""

    def route(self, data: bytes) -> None:
        """Hand an outcome or revocation to the run it names (heard live or from the consumer)."""
        try:
            run_id = json.loads(data).get("run_id")
        except (ValueError, AttributeError):
            return
        watched = self.get(run_id) if isinstance(run_id, str) else None
        if watched is None:
            return  # another runner's run
        try:
            event = decode_event(data)
        except ValidationError:
            return
        if str(event.id) in watched.seen:
            return
        watched.seen.add(str(event.id))
        if isinstance(event, RunConnectionRevoked):
            watched.revocations.append(event)
        elif isinstance(event, RunAdmitted) or (isinstance(event, RunHeld) and watched.outcome is None):
            # A late "held" never overrides an admission: admission is final.
            watched.outcome = event
        watched.changed.set()


async def wait(
    run_id: str, watched: WatchedRun, done: Callable[[RunOutcome | None], bool], timeout: float
) -> RunOutcome:
    """The run's outcome once ``done`` accepts it; ``RunCancelled`` if the run ends first."""
    async with asyncio.timeout(timeout):
        while not done(watched.outcome):
            if watched.finished:
                raise RunCancelled(run_id)
            watched.changed.clear()
            await watched.changed.wait()
    assert watched.outcome is not None
    return watched.outcome
