"""Use cases of runs: admit or hold a requested run, resume held runs after a grant, finish a run.

Every function works in the caller's session and writes its events to the outbox there: the
entrypoint commits the state change and the events together.
"""

from __future__ import annotations

import logging

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.common.contract.runs import RunAdmitted, RunFinished, RunHeld, RunRequested
from grantline.common.outbox import add_event
from grantline.satisfaction.adapters import run_repository
from grantline.satisfaction.adapters.locks import lock_user
from grantline.satisfaction.domain.admission import Admit, Hold, RunRequest, decide_admission, recheck_held
from grantline.satisfaction.domain.catalogue import CatalogueView
from grantline.satisfaction.domain.report import SatisfactionReport
from grantline.satisfaction.domain.requirements import Requirement, RequirementError
from grantline.satisfaction.service.reports import contract_statuses, report_for_user, requirements_of

log = logging.getLogger(__name__)

INVALID_PREFIX = "Invalid requirements: "


def _admitted(tenant_id: str, run_id: str, decision: Admit, *, resumed: bool) -> RunAdmitted:
    return RunAdmitted(
        tenant_id=tenant_id,
        run_id=run_id,
        report=contract_statuses(decision.report.requirements),
        trigger=decision.trigger,
        resumed=resumed,
    )


def _held(tenant_id: str, run_id: str, decision: Hold) -> RunHeld:
    return RunHeld(
        tenant_id=tenant_id,
        run_id=run_id,
        report=contract_statuses(decision.report.requirements),
        missing=contract_statuses(decision.missing),
        message=decision.message,
        trigger=decision.trigger,
    )


async def admit_or_hold(
    session: AsyncSession, outbox: Table, catalogue: CatalogueView, event: RunRequested
) -> RunAdmitted | RunHeld | None:
    """Decide a requested run and publish the outcome; None when the run id was already known."""
    try:
        requirements = requirements_of(event.requirements, event.stages, event.skills)
    except RequirementError as error:
        return await _reject(session, outbox, event, error)
    await lock_user(session, event.tenant_id, event.user_id)
    report = (
        SatisfactionReport.from_statuses([])
        if not requirements
        else await report_for_user(session, catalogue, event.tenant_id, event.user_id, requirements)
    )
    decision = decide_admission(RunRequest(trigger=event.trigger, is_test=event.is_test), report)
    tracked = await run_repository.insert_run(
        session,
        tenant_id=event.tenant_id,
        run_id=event.run_id,
        user_id=event.user_id,
        app_id=event.app_id,
        trigger=event.trigger,
        is_test=event.is_test,
        status="admitted" if isinstance(decision, Admit) else "held",
        requirements=[r.model_dump(mode="json") for r in requirements],
    )
    if not tracked:
        # A second request under a run id we already decided (or saw finish): the first answer stands.
        log.info(
            "run already known; request ignored", extra={"run_id": event.run_id, "tenant_id": event.tenant_id}
        )
        return None
    outcome = outcome_event(event.tenant_id, event.run_id, decision)
    await add_event(session, outbox, outcome)
    return outcome


def outcome_event(tenant_id: str, run_id: str, decision: Admit | Hold) -> RunAdmitted | RunHeld:
    """The event that answers a run request."""
    if isinstance(decision, Admit):
        return _admitted(tenant_id, run_id, decision, resumed=False)
    return _held(tenant_id, run_id, decision)


async def _reject(
    session: AsyncSession, outbox: Table, event: RunRequested, error: RequirementError
) -> RunHeld | None:
    """A run whose requirements cannot be read is held for good, with the reason, so the runner hears back."""
    tracked = await run_repository.insert_run(
        session,
        tenant_id=event.tenant_id,
        run_id=event.run_id,
        user_id=event.user_id,
        app_id=event.app_id,
        trigger=event.trigger,
        is_test=event.is_test,
        status="invalid",
        requirements=[],
    )
    if not tracked:
        return None
    held = held_as_invalid(event, error)
    await add_event(session, outbox, held)
    return held


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
    session: AsyncSession, outbox: Table, catalogue: CatalogueView, tenant_id: str, user_id: str | None
) -> list[RunAdmitted]:
    """Admit the held runs (of the user, or of every user when None) that are satisfied now.

    The caller holds the user's (or the tenant's) lock, so no run request for them is mid-decision.
    """
    admitted: list[RunAdmitted] = []
    for held in await run_repository.held_runs(session, tenant_id, user_id):
        requirements = [Requirement.model_validate(r) for r in held.requirements]
        report = await report_for_user(session, catalogue, tenant_id, held.user_id, requirements)
        previous = Hold(trigger=held.trigger, report=report, missing=report.missing, message="")  # type: ignore[arg-type]
        decision = recheck_held(previous, report)
        if not isinstance(decision, Admit):
            continue
        if await run_repository.admit_held_run(session, tenant_id, held.run_id):
            event = _admitted(tenant_id, held.run_id, decision, resumed=True)
            await add_event(session, outbox, event)
            admitted.append(event)
    return admitted


async def finish(session: AsyncSession, event: RunFinished) -> None:
    """Stop tracking a run: later revocations do not reach it."""
    await run_repository.finish_run(session, event.tenant_id, event.run_id)
