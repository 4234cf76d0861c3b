"""`vault.resolve.<tenant>` (and `vault.report.<tenant>`): the hot path, with an answer of its own.

Resolve is the subject where per-message cost matters most. Each message gets its own task (no
bound: requests wait on the batched reader, not on providers) so that lookups from many messages
meet in one database batch. Replicas share the subject through the queue group. The service
validates and makes no span.
"""

from __future__ import annotations

from collections.abc import Mapping

from grantline.contract.vault import SUBJECT_REPORT, SUBJECT_RESOLVE
from grantline.runtime.nats.request_reply import RequestSubscription
from grantline.vault.service.report import ReportService
from grantline.vault.service.resolve import ResolveService


def resolve_subscription(service: ResolveService) -> RequestSubscription:
    """Serves `vault.resolve` once started (app.py starts and stops it with the runtime)."""

    async def answer(data: bytes, _headers: Mapping[str, str] | None, subject: str) -> tuple[bytes, str]:
        return await service.handle(data, subject)

    # The queue group keeps the name it had before subjects carried the tenant, so replicas of both
    # builds share requests during a rollout.
    return RequestSubscription(
        service="vault", subject=f"{SUBJECT_RESOLVE}.*", answer=answer, queue=f"vault.{SUBJECT_RESOLVE}"
    )


def report_subscription(service: ReportService) -> RequestSubscription:
    """Serves `vault.report.<tenant>` (a server refused a resolved token or wants more scope) once started."""

    async def answer(data: bytes, _headers: Mapping[str, str] | None, subject: str) -> tuple[bytes, str]:
        return await service.handle(data, subject)

    return RequestSubscription(
        service="vault", subject=f"{SUBJECT_REPORT}.*", answer=answer, queue=f"vault.{SUBJECT_REPORT}"
    )
