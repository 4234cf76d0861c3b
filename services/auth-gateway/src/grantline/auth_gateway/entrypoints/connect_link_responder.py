"""``gateway.connect_link.<tenant>``: mint a connect link for a user who lacks a connection.

Satisfaction asks for one per missing requirement of a held run (the link travels in ``runs.held``);
a runner asks for a fresh one with ``RunnerClient.connect_link``. The subject names the tenant, and
NATS lets a runner publish on its own tenants' subjects only; a body naming another tenant is refused
here, so a runner of one tenant cannot mint links for another tenant's users.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from grantline.auth_gateway.service.connect_sessions import mint_connect_link
from grantline.auth_gateway.service.context import Gateway
from grantline.auth_gateway.service.problems import Problem
from grantline.contract.connect_links import SUBJECT_CONNECT_LINK, ConnectLinkRequest
from grantline.contract.envelope import tenant_of
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.registry import encode_message
from grantline.runtime.nats.consuming import validation_summary
from grantline.runtime.nats.request_reply import RequestSubscription

_CODES = {403: ErrorCode.FORBIDDEN, 404: ErrorCode.NOT_FOUND, 409: ErrorCode.CONFLICT}


def _error(code: ErrorCode, message: str, outcome: str) -> tuple[bytes, str]:
    return encode_message(ErrorReply.of(code, message)), outcome


def connect_link_responder(gw: Gateway) -> RequestSubscription:
    """The responder (started and stopped with the runtime)."""

    async def answer(data: bytes, _headers: Mapping[str, str] | None, subject: str) -> tuple[bytes, str]:
        try:
            request = ConnectLinkRequest.model_validate_json(data)
        except ValidationError as error:
            return _error(
                ErrorCode.INVALID_REQUEST, f"invalid request: {validation_summary(error)}", "rejected"
            )
        if request.tenant_id != tenant_of(subject):
            return _error(
                ErrorCode.FORBIDDEN, "the request names another tenant than its subject", "error_reply"
            )
        try:
            reply = await mint_connect_link(gw, request)
        except Problem as problem:
            code = _CODES.get(problem.status, ErrorCode.INVALID_REQUEST)
            return _error(code, problem.detail, "error_reply")
        return encode_message(reply), "ok"

    return RequestSubscription(
        service="auth-gateway",
        subject=f"{SUBJECT_CONNECT_LINK}.*",
        answer=answer,
        queue=f"auth-gateway.{SUBJECT_CONNECT_LINK}",
    )
