"""Use cases of runs: answer a run whose requirements cannot be read, resume held runs after a
grant, finish a run (the admission hot path is ``run_batches``).

Every function works in the caller's transaction and writes its events to the outbox there: the
entrypoint commits the state change and the events together.
"""

from __future__ import annotations

import logging

from grantline.contract.runs import RunAdmitted, RunFinished, RunHeld, RunRequested
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.outbox_relay import OutboxLocation, write_events
from grantline.satisfaction.adapters import run_repository
from grantline.satisfaction.domain.admission import Admit, Hold, recheck_held
from grantline.satisfaction.domain.catalogue import CatalogueView
from grantline.satisfaction.domain.requirements import Requirement, RequirementError
from grantline.satisfaction.service.reports import contract_statuses, report_for_user
from grantline.satisfaction.service.run_grants import RunGrantIssuer

log = logging.getLogger(__name__)

INVALID_PREFIX = "Invalid requirements: "


def _admitted(
    tenant_id: str, held: run_repository.HeldRun, decision: Admit, grant: str, *, resumed: bool
) -> RunAdmitted:
    return RunAdmitted(
        tenant_id=tenant_id,
        run_id=held.run_id,
        report=contract_statuses(decision.report.requirements),
        trigger=decision.trigger,
        resumed=resumed,
        grant=grant,
    )


def held_as_invalid(event: RunRequested, error: RequirementError) -> RunHeld:
    """The answer to a run whose requirements cannot be read: held for good, with the reason."""
    return RunHeld(
        tenant_id=event.tenant_id,
        run_id=event.run_id,
        report=[],
        missing=[],
        message=INVALID_PREFIX + str(error),
        trigger=event.trigger,
    )


async def resume_held_runs(
    conn: DriverConnection,
    outbox: OutboxLocation,
    catalogue: CatalogueView,
    grants: RunGrantIssuer,
    tenant_id: str,
    user_id: str | None,
) -> list[RunAdmitted]:
    """Admit the held runs (of the user, or of every user when None) that are satisfied now.

    The caller holds the user's (or the tenant's) lock, so no run request for them is mid-decision.
    """
    admitted: list[RunAdmitted] = []
    for held in await run_repository.held_runs(conn, tenant_id, user_id):
        requirements = [Requirement.model_validate(r) for r in held.requirements]
        report = await report_for_user(conn, catalogue, tenant_id, held.user_id, requirements)
        previous = Hold(trigger=held.trigger, report=report, missing=report.missing, message="")  # type: ignore[arg-type]
        decision = recheck_held(previous, report)
        if not isinstance(decision, Admit):
            continue
        if await run_repository.admit_held_run(conn, tenant_id, held.run_id):
            grant = grants.grant_for(
                catalogue,
                requirements,
                tenant_id=tenant_id,
                run_id=held.run_id,
                user_id=held.user_id,
                app_id=held.app_id,
                is_test=held.is_test,
            )
            event = _admitted(tenant_id, held, decision, grant, resumed=True)
            await write_events(conn, outbox, [event])
            admitted.append(event)
    return admitted


async def finish(conn: DriverConnection, event: RunFinished) -> None:
    """Stop tracking a run: later revocations do not reach it."""
    await run_repository.finish_run(conn, event.tenant_id, event.run_id)
