"""Use case: decide a batch of requested runs in one transaction.

At a thousand runs a second the per-transaction and per-statement costs dominate, so the hot path takes
every user's lock, reads every user's connected grants and writes every run and event with one statement
each (see ``run_batch_writes``), and takes reports from the memo. An admitted run's event carries
its run grant.
"""

from __future__ import annotations

import asyncio

from grantline.contract.runs import RunAdmitted, RunHeld, RunRequested
from grantline.runtime.db.driver import DriverConnection
from grantline.satisfaction.adapters.inbox_and_locks import send_record_and_lock
from grantline.satisfaction.adapters.mirror_repository import send_connected_grants_read
from grantline.satisfaction.adapters.run_batch_writes import insert_runs_with_events
from grantline.satisfaction.domain.admission import Admit, RunRequest, decide_admission
from grantline.satisfaction.domain.catalogue import TenantCatalogues
from grantline.satisfaction.domain.report import usable_scopes
from grantline.satisfaction.domain.requirements import Requirement, RequirementError
from grantline.satisfaction.service.held_links import LinkMinter, with_connect_links
from grantline.satisfaction.service.report_memo import ReportMemo
from grantline.satisfaction.service.reports import requirements_of
from grantline.satisfaction.service.run_admission import held_as_invalid
from grantline.satisfaction.service.run_grants import RunGrantIssuer

_NOTHING_REQUIRED: list[Requirement] = []


async def admit_or_hold_batch(
    conn: DriverConnection,
    catalogues: TenantCatalogues,
    events: list[RunRequested],
    consumer: str,
    issuer: RunGrantIssuer,
    memo: ReportMemo | None = None,
    links: LinkMinter | None = None,
) -> list[RunAdmitted | RunHeld]:
    """Decide each first-seen event of the batch; returns the outcomes published.

    With ``links``, each held run carries a connect link per missing requirement.
    """
    memo = memo or ReportMemo()
    users = {(event.tenant_id, event.user_id) for event in events}
    # Sent together (the connection is pipelined): the locks, then the grants of every user of the
    # batch, read after the locks are held (a statement of its own, so with a snapshot taken then).
    fresh_ids = await send_record_and_lock(conn, consumer, [event.id for event in events], users=users)
    grants = await send_connected_grants_read(conn, users)
    fresh = await fresh_ids()
    all_grants = await grants()
    parsed: dict[tuple[str, str], tuple[RunRequested, list[Requirement]]] = {}
    decided: list[RunAdmitted | RunHeld] = []
    new_runs: list[dict[str, object]] = []
    seen: set[tuple[str, str]] = set()
    for event in events:
        key = (event.tenant_id, event.run_id)
        if event.id not in fresh or key in seen:
            continue  # a redelivery, or the same run twice in one batch: the first one stands
        seen.add(key)
        try:
            parsed[key] = (event, requirements_of(event.requirements, event.stages, event.skills))
        except RequirementError as error:
            # Held for good with the reason, so the runner hears back.
            decided.append(held_as_invalid(event, error))
            new_runs.append(_run_row(event, "invalid", []))
    for event, requirements in parsed.values():
        catalogue = catalogues.for_tenant(event.tenant_id)
        usable = usable_scopes(all_grants[(event.tenant_id, event.user_id)]) if requirements else {}
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
                grant=issuer.grant_for(
                    catalogue,
                    requirements,
                    tenant_id=event.tenant_id,
                    run_id=event.run_id,
                    user_id=event.user_id,
                    app_id=event.app_id,
                    is_test=event.is_test,
                ),
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
        status = "admitted" if isinstance(decision, Admit) else "held"
        new_runs.append(_run_row(event, status, memo.stored_requirements(requirements)))
    if links is not None:
        decided = await _with_links(decided, new_runs, catalogues, links)
    tracked = await insert_runs_with_events(conn, new_runs, decided)
    return [outcome for outcome in decided if (outcome.tenant_id, outcome.run_id) in tracked]


async def _with_links(
    decided: list[RunAdmitted | RunHeld],
    runs: list[dict[str, object]],
    catalogues: TenantCatalogues,
    links: LinkMinter,
) -> list[RunAdmitted | RunHeld]:
    # All held runs of the batch ask at once: a slow gateway costs the batch one deadline, not one each.
    async def linked(outcome: RunAdmitted | RunHeld, run: dict[str, object]) -> RunAdmitted | RunHeld:
        # A scheduled tick has no user at hand to click a link (the scheduler retries next tick).
        if isinstance(outcome, RunHeld) and outcome.missing and outcome.trigger != "schedule":
            catalogue = catalogues.for_tenant(outcome.tenant_id)
            return await with_connect_links(outcome, str(run["user_id"]), catalogue, links)
        return outcome

    return list(await asyncio.gather(*map(linked, decided, runs)))


def _run_row(event: RunRequested, status: str, requirements: object) -> dict[str, object]:
    return {
        "tenant_id": event.tenant_id,
        "run_id": event.run_id,
        "user_id": event.user_id,
        "app_id": event.app_id,
        "trigger": event.trigger,
        "is_test": event.is_test,
        "status": status,
        "requirements": requirements,
    }
