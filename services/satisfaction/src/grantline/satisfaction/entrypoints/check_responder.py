"""``satisfaction.check`` on a raw nats-py queue subscription: a report from the mirror, never the vault.

FastStream's per-message machinery cost several times the check itself, so the hot path skips it (as
the vault's resolve does): each request gets a task, concurrent checks share one mirror read, and the
report (with its encoded reply) usually comes from the memo. A span is made only for a request that
carries a trace. Replicas share the subject through the queue group.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from opentelemetry import trace
from pydantic import ValidationError

from grantline.common.contract.errors import ErrorCode, ErrorReply
from grantline.common.contract.registry import encode_message
from grantline.common.contract.satisfaction import SUBJECT_CHECK, SatisfactionCheckRequest
from grantline.common.nats.consuming import validation_summary
from grantline.common.runtime import ServiceRuntime
from grantline.common.telemetry.metrics import MESSAGE_SECONDS, MESSAGES_HANDLED
from grantline.common.telemetry.tracing import extract_context, tracer
from grantline.satisfaction.adapters.grant_reads import GatheredGrantReads
from grantline.satisfaction.domain.report import usable_scopes
from grantline.satisfaction.domain.requirements import RequirementError
from grantline.satisfaction.service.catalogue_cache import CatalogueCache
from grantline.satisfaction.service.report_memo import ReportMemo
from grantline.satisfaction.service.reports import requirements_of

log = logging.getLogger(__name__)

# The queue group FastStream's responder used, so old and new replicas share requests during a rollout.
QUEUE = f"satisfaction.{SUBJECT_CHECK}"
_INTERNAL = encode_message(ErrorReply.of(ErrorCode.INTERNAL, "internal error; see the service log"))
_EMPTY_IDS = encode_message(
    ErrorReply.of(ErrorCode.INVALID_REQUEST, "tenant_id and user_id must not be empty")
)


class CheckResponder:
    """Serves ``satisfaction.check`` until stopped."""

    def __init__(
        self, runtime: ServiceRuntime, catalogue: CatalogueCache, memo: ReportMemo, *, reads_in_flight: int
    ) -> None:
        self._runtime = runtime
        self._catalogue = catalogue
        self._memo = memo
        self._reads = GatheredGrantReads(runtime.engine, max_in_flight=reads_in_flight)
        self._subscription: Subscription | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._handled = {
            outcome: MESSAGES_HANDLED.labels(runtime.name, SUBJECT_CHECK, outcome)
            for outcome in ("ok", "error_reply", "rejected", "failed")
        }
        self._seconds = MESSAGE_SECONDS.labels(runtime.name, SUBJECT_CHECK)

    async def start(self) -> None:
        """Subscribe in the queue group."""
        self._nc: Client = self._runtime.nats
        self._subscription = await self._nc.subscribe(
            SUBJECT_CHECK, queue=QUEUE, cb=self._on_message, pending_msgs_limit=1_000_000
        )

    async def stop(self) -> None:
        """Stop taking requests and answer those in hand."""
        if self._subscription is not None:
            try:
                await self._subscription.unsubscribe()
            except Exception:  # the connection may already be closed
                log.debug("check unsubscribe failed", exc_info=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._reads.close()

    async def _on_message(self, msg: Msg) -> None:
        task = asyncio.ensure_future(self._serve(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, msg: Msg) -> None:
        started = time.perf_counter()
        if msg.headers and "traceparent" in msg.headers:
            with tracer().start_as_current_span(
                f"{SUBJECT_CHECK} serve", context=extract_context(msg.headers), kind=trace.SpanKind.SERVER
            ) as span:
                span.set_attribute("messaging.system", "nats")
                span.set_attribute("messaging.destination.name", SUBJECT_CHECK)
                reply, outcome = await self._answer(msg.data)
                if outcome != "ok":
                    span.set_attribute("grantline.check.outcome", outcome)
        else:
            reply, outcome = await self._answer(msg.data)
        if msg.reply:
            try:
                await self._nc.publish(msg.reply, reply)
            except Exception as error:
                log.warning("check reply not sent", extra={"error": type(error).__name__})
        self._handled[outcome].inc()
        self._seconds.observe(time.perf_counter() - started)

    async def _answer(self, data: bytes) -> tuple[bytes, str]:
        """The encoded reply and the outcome label; errors are replies."""
        try:
            request = SatisfactionCheckRequest.model_validate_json(data)
        except ValidationError as error:
            message = f"invalid request: {validation_summary(error)}"
            return encode_message(ErrorReply.of(ErrorCode.INVALID_REQUEST, message)), "rejected"
        try:
            requirements = requirements_of(request.requirements, request.stages, request.skills)
        except RequirementError as error:
            return encode_message(ErrorReply.of(ErrorCode.INVALID_REQUEST, str(error))), "error_reply"
        if not request.tenant_id or not request.user_id:
            return _EMPTY_IDS, "error_reply"
        try:
            grants = await self._reads.grants_for(request.tenant_id, request.user_id) if requirements else []
            memo_report = self._memo.report(self._catalogue.view, requirements, usable_scopes(grants))
            return memo_report.check_reply(), "ok"
        except Exception:
            log.exception("check failed", extra={"subject": SUBJECT_CHECK})
            return _INTERNAL, "failed"
