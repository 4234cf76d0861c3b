"""``satisfaction.renew_grant.<tenant>``: a fresh grant for a run still in progress.

A grant lives an hour by default, so a run that outlives it asks for a new one, presenting the grant
it holds (still valid: an expired grant cannot be renewed). The new grant names the same run, user,
app, providers and scopes; a run that has finished, or was never admitted, gets none.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from grantline.contract.envelope import tenant_of
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.registry import encode_message
from grantline.contract.run_grants import unverified_claims
from grantline.contract.satisfaction import SUBJECT_RENEW_GRANT, RenewGrantReply, RenewGrantRequest
from grantline.runtime.nats.consuming import validation_summary
from grantline.runtime.nats.request_reply import RequestSubscription
from grantline.runtime.run_grants import GrantRejected
from grantline.runtime.service_runtime import ServiceRuntime
from grantline.satisfaction.adapters.run_repository import run_status
from grantline.satisfaction.service.run_grants import RunGrantIssuer


def _refused(message: str) -> tuple[bytes, str]:
    return encode_message(ErrorReply.of(ErrorCode.FORBIDDEN, message)), "error_reply"


def grant_renewals(runtime: ServiceRuntime, grants: RunGrantIssuer) -> RequestSubscription:
    """The responder (started and stopped with the runtime)."""

    async def answer(data: bytes, _headers: Mapping[str, str] | None, subject: str) -> tuple[bytes, str]:
        try:
            request = RenewGrantRequest.model_validate_json(data)
        except ValidationError as error:
            reply = ErrorReply.of(ErrorCode.INVALID_REQUEST, f"invalid request: {validation_summary(error)}")
            return encode_message(reply), "rejected"
        try:
            grant = grants.verifier.verify(request.grant.get_secret_value())
        except GrantRejected as rejected:
            return _refused(rejected.reason)
        if grant.tenant_id != tenant_of(subject):
            return _refused("the run grant is for another tenant than the subject the request came on")
        # A read: nothing for the relay to publish.
        async with runtime.driver_transaction(wake_relay=False) as conn:
            status = await run_status(conn, grant.tenant_id, grant.run_id)
        if status != "admitted":
            return _refused("the run has finished" if status == "finished" else "the run is not admitted")
        renewed = grants.renewed(grant)
        expires = unverified_claims(renewed)["exp"]
        reply_model = RenewGrantReply(grant=renewed, expires_at=expires)  # type: ignore[arg-type]
        return encode_message(reply_model), "ok"

    return RequestSubscription(
        service=runtime.name,
        subject=f"{SUBJECT_RENEW_GRANT}.*",
        answer=answer,
        queue=f"satisfaction.{SUBJECT_RENEW_GRANT}",
    )
