"""`/v1/oauth`: the provider's redirect back (browser) and the server-side code exchange."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import RedirectResponse, Response

from grantline.auth_gateway.domain.return_to import with_outcome
from grantline.auth_gateway.entrypoints.client_address import client_address
from grantline.auth_gateway.entrypoints.flow_cookie import presented_binding
from grantline.auth_gateway.entrypoints.http.context import CallerDep, GatewayDep
from grantline.auth_gateway.entrypoints.http.problem_details import PROBLEM_RESPONSES, problem_response
from grantline.auth_gateway.service import rate_limits
from grantline.auth_gateway.service.flow_callback import FlowRefused, provider_error_code
from grantline.auth_gateway.service.problems import Problem, from_error_reply
from grantline.auth_gateway.service.views import ConnectionView, connection_view
from grantline.contract.errors import ErrorReply

router = APIRouter(prefix="/v1/oauth", tags=["oauth"])

MAX_CODE_LENGTH = 4096
_STATE_HELP = "the `state` the flow was started with"


def _redirect(return_to: str, **outcome: str | None) -> RedirectResponse:
    # 303: the browser follows with a GET whatever method brought it here.
    return RedirectResponse(with_outcome(return_to, **outcome), status_code=303)


@router.get(
    "/callback",
    status_code=303,
    summary="Provider redirect (no API key; bound by state)",
    responses={
        303: {"description": "Back to return_to with status, connection_id, provider, error"},
        400: {},
        429: PROBLEM_RESPONSES[429],
    },
)
async def callback(
    request: Request,
    gw: GatewayDep,
    state: Annotated[str | None, Query(max_length=200, description=_STATE_HELP)] = None,
    code: Annotated[str | None, Query(max_length=MAX_CODE_LENGTH)] = None,
    iss: Annotated[str | None, Query(max_length=2048)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Check `state` (and, for flows started from a page, the browser), exchange the code, redirect."""
    binding = presented_binding(request, gw.settings.public_url)
    address = client_address(request)
    await rate_limits.check_failures(gw.runtime, gw.limits.failed_state_per_address, address)
    try:
        async with gw.runtime.driver_transaction(wake_relay=False) as conn:
            stored = await gw.flow.claim(conn, state=state, iss=iss, browser_binding=binding)
    except FlowRefused as refused:
        if over := await rate_limits.record_failure(gw.runtime, gw.limits.failed_state_per_address, address):
            raise over from None
        if refused.return_to is None:
            return problem_response(400, refused.code, "this authorization link is not valid")
        return _redirect(
            refused.return_to, status="error", error=refused.code, connection_id=refused.connection_id
        )
    pending = stored.pending
    outcome = {"connection_id": pending.connection_id, "provider": pending.provider}
    if error is not None:
        return _redirect(pending.return_to, status="error", error=provider_error_code(error), **outcome)
    if not code:
        return _redirect(pending.return_to, status="error", error="missing_code", **outcome)
    try:
        result = await gw.flow.exchange(stored, code)
    except Problem as problem:
        return _redirect(pending.return_to, status="error", error=problem.code, **outcome)
    if isinstance(result, ErrorReply):
        return _redirect(pending.return_to, status="error", error=result.error.code.value, **outcome)
    return _redirect(pending.return_to, status="connected", **outcome)


class TokenExchangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=MAX_CODE_LENGTH)
    state: str = Field(min_length=1, max_length=200, description=_STATE_HELP)
    iss: str | None = Field(default=None, max_length=2048)


@router.post(
    "/token",
    response_model=ConnectionView,
    summary="Exchange a code server-side (front ends that receive the redirect themselves)",
    responses={**PROBLEM_RESPONSES, 400: PROBLEM_RESPONSES[422] | {"description": "state refused"}},
)
async def exchange_code(
    gw: GatewayDep, caller: CallerDep, body: TokenExchangeIn, request: Request
) -> ConnectionView | Response:
    """The same exchange as the callback, answered with the connection instead of a redirect."""
    address = client_address(request)
    await rate_limits.check_failures(gw.runtime, gw.limits.failed_state_per_address, address)
    try:
        async with gw.runtime.driver_transaction(wake_relay=False) as conn:
            stored = await gw.flow.claim(
                conn, state=body.state, iss=body.iss, tenant_id=caller.tenant_id, principal=caller
            )
    except FlowRefused as refused:
        if over := await rate_limits.record_failure(gw.runtime, gw.limits.failed_state_per_address, address):
            raise over from None
        return problem_response(400, refused.code, "the state is not valid for this caller")
    result = await gw.flow.exchange(stored, body.code)
    if isinstance(result, ErrorReply):
        raise from_error_reply(result)
    return connection_view(result)
