"""``satisfaction.check.<tenant>`` on a raw nats-py queue subscription: a report from the mirror.

The hot path, on a responder of its own (as the vault's resolve is): each request gets a task,
concurrent checks share one mirror read, and the report (with its encoded reply) usually comes from
the memo. A span is made only for a request that carries a trace. Replicas share the subject
through the queue group.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from nats.aio.client import Client
from opentelemetry import trace
from pydantic import ValidationError

from grantline.contract.envelope import tenant_of
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.registry import encode_message
from grantline.contract.satisfaction import SUBJECT_CHECK, SatisfactionCheckRequest
from grantline.runtime.nats.consuming import validation_summary
from grantline.runtime.nats.request_reply import RequestSubscription
from grantline.runtime.service_runtime import ServiceRuntime
from grantline.runtime.telemetry.tracing import extract_context, tracer
from grantline.satisfaction.adapters.grant_reads import GatheredGrantReads
from grantline.satisfaction.domain.report import usable_scopes
from grantline.satisfaction.domain.requirements import RequirementError
from grantline.satisfaction.service.catalogue_cache import CatalogueCache
from grantline.satisfaction.service.report_memo import ReportMemo
from grantline.satisfaction.service.reports import requirements_of

QUEUE = f"satisfaction.{SUBJECT_CHECK}"
_EMPTY_IDS = encode_message(
    ErrorReply.of(ErrorCode.INVALID_REQUEST, "tenant_id and user_id must not be empty")
)
_OTHER_TENANT = encode_message(
    ErrorReply.of(ErrorCode.FORBIDDEN, "tenant_id is not the tenant of the subject the request came on")
)


class CheckResponder:
    """Serves ``satisfaction.check`` until stopped."""

    def __init__(
        self, runtime: ServiceRuntime, catalogue: CatalogueCache, memo: ReportMemo, *, reads_in_flight: int
    ) -> None:
        self._runtime = runtime
        self._catalogue = catalogue
        self._memo = memo
        self._reads = GatheredGrantReads(
            partial(runtime.single_statement, wake_relay=False), max_in_flight=reads_in_flight
        )
        self._subscription = RequestSubscription(
            service=runtime.name,
            subject=f"{SUBJECT_CHECK}.*",
            answer=self._traced_answer,
            queue=QUEUE,
        )

    async def start(self, nc: Client) -> None:
        """Subscribe in the queue group."""
        await self._subscription.start(nc)

    async def stop(self) -> None:
        """Stop taking requests and answer those in hand."""
        await self._subscription.stop()
        await self._reads.close()

    async def _traced_answer(
        self, data: bytes, headers: Mapping[str, str] | None, subject: str
    ) -> tuple[bytes, str]:
        if not (headers and "traceparent" in headers):
            return await self._answer(data, subject)
        with tracer().start_as_current_span(
            f"{SUBJECT_CHECK} serve", context=extract_context(headers), kind=trace.SpanKind.SERVER
        ) as span:
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.destination.name", SUBJECT_CHECK)
            reply, outcome = await self._answer(data, subject)
            if outcome != "ok":
                span.set_attribute("grantline.check.outcome", outcome)
        return reply, outcome

    async def _answer(self, data: bytes, subject: str) -> tuple[bytes, str]:
        """The encoded reply and the outcome label; errors are replies."""
        try:
            request = SatisfactionCheckRequest.model_validate_json(data)
        except ValidationError as error:
            message = f"invalid request: {validation_summary(error)}"
            return encode_message(ErrorReply.of(ErrorCode.INVALID_REQUEST, message)), "rejected"
        if request.tenant_id != tenant_of(subject):
            # A runner may ask on its own tenants' subjects only; the body must not name another.
            return _OTHER_TENANT, "error_reply"
        try:
            requirements = requirements_of(
                request.requirements, request.stages, request.skills, stage=request.stage
            )
        except RequirementError as error:
            return encode_message(ErrorReply.of(ErrorCode.INVALID_REQUEST, str(error))), "error_reply"
        if not request.tenant_id or not request.user_id:
            return _EMPTY_IDS, "error_reply"
        # A failure here is answered `internal` by the subscription.
        grants = await self._reads.grants_for(request.tenant_id, request.user_id) if requirements else []
        memo_report = self._memo.report(
            self._catalogue.for_tenant(request.tenant_id), requirements, usable_scopes(grants)
        )
        return memo_report.check_reply(), "ok"
