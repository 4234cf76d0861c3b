"""``audit.query``: one page of a tenant's records, newest first. Errors are replies."""

from pydantic import BaseModel, SecretBytes, ValidationError

from grantline.audit.domain.cursor import CursorError
from grantline.audit.service.query import query_from_request, query_records
from grantline.contract.audit import AuditQueryRequest
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.runtime.nats.consuming import validation_summary
from grantline.runtime.nats.request_reply import serving
from grantline.runtime.service_runtime import ServiceRuntime

QUERY_SUBJECT = "audit.query"


def serve_audit_query(runtime: ServiceRuntime, *, cursor_key: SecretBytes, max_workers: int = 4) -> None:
    """Answer ``audit.query`` requests from the ledger."""

    async def handle(request: AuditQueryRequest) -> BaseModel:
        try:
            query = query_from_request(request)
        except ValidationError as error:
            return ErrorReply.of(ErrorCode.INVALID_REQUEST, f"invalid query: {validation_summary(error)}")
        try:
            # One statement, and a read: autocommit, and no wake of the outbox relay.
            async with runtime.single_statement(wake_relay=False) as conn:
                return await query_records(conn, query, cursor_key=cursor_key)
        except CursorError as error:
            return ErrorReply.of(ErrorCode.INVALID_REQUEST, str(error))

    runtime.serve_requests(
        serving("audit", QUERY_SUBJECT, AuditQueryRequest, handle, max_in_flight=max_workers)
    )
