"""Use case: decide a batch of requested runs in one transaction.

At a thousand runs a second the per-transaction and per-statement costs dominate, so the hot path takes
every user's lock, reads every user's connected grants and writes every run and event with one statement
each (see ``run_batch_writes``), and takes reports from the memo. The decisions are the same as
``admit_or_hold`` makes for one run.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.common.contract.runs import RunAdmitted, RunHeld, RunRequested
from grantline.satisfaction.adapters.inbox_and_locks import record_and_lock
from grantline.satisfaction.adapters.mirror_repository import connected_grants_for_users
from grantline.satisfaction.adapters.run_batch_writes import insert_runs_with_events
from grantline.satisfaction.domain.admission import Admit, RunRequest, decide_admission
from grantline.satisfaction.domain.catalogue import CatalogueView
from grantline.satisfaction.domain.report import usable_scopes
from grantline.satisfaction.domain.requirements import Requirement, RequirementError
from grantline.satisfaction.service.report_memo import ReportMemo
from grantline.satisfaction.service.reports import requirements_of
from grantline.satisfaction.service.run_admission import admit_or_hold

_NOTHING_REQUIRED: list[Requirement] = []


async def admit_or_hold_batch(
    session: AsyncSession,
    outbox: Table,
    catalogue: CatalogueView,
    events: list[RunRequested],
    consumer: str,
    memo: ReportMemo | None = None,
) -> list[RunAdmitted | RunHeld]:
    """Decide each first-seen event of the batch; returns the outcomes published."""
    memo = memo or ReportMemo()
    users = {(event.tenant_id, event.user_id) for event in events}
    fresh = await record_and_lock(session, consumer, [event.id for event in events], users=users)
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
            rejected = await admit_or_hold(session, outbox, catalogue, event)  # rare: one by one
            if rejected is not None:
                published.append(rejected)
    grants = await connected_grants_for_users(
        session, {(event.tenant_id, event.user_id) for event, _ in parsed.values()}
    )
    decided: list[RunAdmitted | RunHeld] = []
    new_runs: list[dict[str, object]] = []
    for event, requirements in parsed.values():
        usable = usable_scopes(grants[(event.tenant_id, event.user_id)]) if requirements else {}
        memo_report = memo.report(catalogue, requirements or _NOTHING_REQUIRED, usable)
        decision = decide_admission(
            RunRequest(trigger=event.trigger, is_test=event.is_test), memo_report.report
        )
        outcome: RunAdmitted | RunHeld
        if isinstance(decision, Admit):
            outcome = RunAdmitted(
                tenant_id=event.tenant_id,
                run_id=event.run_id,
                report=memo_report.statuses,
                trigger=event.trigger,
            )
        else:
            outcome = RunHeld(
                tenant_id=event.tenant_id,
                run_id=event.run_id,
                report=memo_report.statuses,
                missing=memo_report.missing,
                message=memo_report.message,
                trigger=event.trigger,
            )
        decided.append(outcome)
        new_runs.append(
            {
                "tenant_id": event.tenant_id,
                "run_id": event.run_id,
                "user_id": event.user_id,
                "app_id": event.app_id,
                "trigger": event.trigger,
                "is_test": event.is_test,
                "status": "admitted" if isinstance(decision, Admit) else "held",
                "requirements": memo.stored_requirements(requirements),
            }
        )
    tracked = await insert_runs_with_events(session, new_runs, decided)
    return published + [outcome for outcome in decided if (outcome.tenant_id, outcome.run_id) in tracked]
