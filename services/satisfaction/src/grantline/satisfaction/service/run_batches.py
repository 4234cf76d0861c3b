"""Use case: decide a batch of requested runs in one transaction.

At a thousand runs a second the per-transaction cost dominates, so the hot path reads every user's mirror
rows, takes every user's lock and writes every run and event with one statement each. The decisions are
the same as ``admit_or_hold`` makes for one run.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.common.contract.runs import RunAdmitted, RunHeld, RunRequested
from grantline.common.outbox import add_events
from grantline.satisfaction.adapters import run_repository
from grantline.satisfaction.adapters.locks import lock_users
from grantline.satisfaction.adapters.mirror_repository import records_for_users
from grantline.satisfaction.domain.admission import Admit, RunRequest, decide_admission
from grantline.satisfaction.domain.catalogue import CatalogueView
from grantline.satisfaction.domain.report import SatisfactionReport
from grantline.satisfaction.domain.requirements import Requirement, RequirementError
from grantline.satisfaction.service.reports import report_from_records, requirements_of
from grantline.satisfaction.service.run_admission import admit_or_hold, outcome_event


async def admit_or_hold_batch(
    session: AsyncSession, outbox: Table, catalogue: CatalogueView, events: list[RunRequested], consumer: str
) -> list[RunAdmitted | RunHeld]:
    """Decide each first-seen event of the batch; returns the outcomes published."""
    fresh = await run_repository.first_deliveries(session, consumer, [event.id for event in events])
    parsed: dict[tuple[str, str], tuple[RunRequested, list[Requirement]]] = {}
    published: list[RunAdmitted | RunHeld] = []
    for event in events:
        if event.id not in fresh or (event.tenant_id, event.run_id) in parsed:
            continue  # a redelivery, or the same run twice in one batch: the first one stands
        try:
            parsed[(event.tenant_id, event.run_id)] = (
                event,
                requirements_of(event.requirements, event.stages, event.skills),
            )
        except RequirementError:
            outcome = await admit_or_hold(session, outbox, catalogue, event)  # rare: the one-by-one path
            if outcome is not None:
                published.append(outcome)
    users = {(event.tenant_id, event.user_id) for event, _ in parsed.values()}
    await lock_users(session, users)
    records = await records_for_users(session, users)
    decided: list[RunAdmitted | RunHeld] = []
    rows = []
    for event, requirements in parsed.values():
        report = (
            report_from_records(requirements, records[(event.tenant_id, event.user_id)], catalogue)
            if requirements
            else SatisfactionReport.from_statuses([])
        )
        decision = decide_admission(RunRequest(trigger=event.trigger, is_test=event.is_test), report)
        decided.append(outcome_event(event.tenant_id, event.run_id, decision))
        rows.append(
            {
                "tenant_id": event.tenant_id,
                "run_id": event.run_id,
                "user_id": event.user_id,
                "app_id": event.app_id,
                "trigger": event.trigger,
                "is_test": event.is_test,
                "status": "admitted" if isinstance(decision, Admit) else "held",
                "requirements": [r.model_dump(mode="json") for r in requirements],
            }
        )
    tracked = await run_repository.insert_runs(session, rows)
    new = [outcome for outcome in decided if (outcome.tenant_id, outcome.run_id) in tracked]
    await add_events(session, outbox, new)
    return published + new
