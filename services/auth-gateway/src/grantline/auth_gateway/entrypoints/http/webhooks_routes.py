"""`/v1/webhooks/{provider}/{app id}`: provider events (no API key; the app's signature, vault-checked).

The older `/v1/webhooks/{provider}` still works (deprecated): the vault then tries every app's secret.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from grantline.auth_gateway.entrypoints.client_address import client_address
from grantline.auth_gateway.entrypoints.http.context import GatewayDep
from grantline.auth_gateway.entrypoints.http.problem_details import PROBLEM_RESPONSES
from grantline.auth_gateway.service import rate_limits
from grantline.auth_gateway.service.context import Gateway
from grantline.auth_gateway.service.problems import Problem
from grantline.auth_gateway.service.webhook_ingress import WebhookIngress

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


class WebhookAck(BaseModel):
    status: Literal["accepted", "duplicate", "challenge"]
    challenge: str | None = None
    revoked_connections: int = 0


# Our refusal reasons as RFC 8935 `err` codes (anything else is `invalid_request`).
_SET_ERRORS = {
    "unknown_key": "invalid_key",
    "bad_issuer": "invalid_issuer",
    "bad_audience": "invalid_audience",
}
_ProviderId = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: PROBLEM_RESPONSES[422] | {"description": "security event token not valid (RFC 8935 `err`)"},
    401: PROBLEM_RESPONSES[401] | {"description": "signature, timestamp or token not valid"},
    429: PROBLEM_RESPONSES[429],
    503: PROBLEM_RESPONSES[503],
}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
            "application/secevent+jwt": {"schema": {"type": "string"}},
        },
    }
}


@router.post(
    "/{provider}/{app_id}",
    response_model=WebhookAck,
    summary="Provider webhook for one provider app (signature-verified)",
    responses=_RESPONSES,
    openapi_extra=_BODY,
)
async def receive_app_webhook(
    gw: GatewayDep,
    request: Request,
    provider: _ProviderId,
    app_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
) -> WebhookAck:
    """The URL to give the provider (`webhook_path` of the provider app, or of a platform app in
    `grantline platform-apps list`): checked against that app's secret only.

    Verified by the vault; a replayed delivery is acknowledged (200, `duplicate`) and changes nothing.
    """
    return await _receive(gw, request, provider, app_id)


@router.post(
    "/{provider}",
    response_model=WebhookAck,
    summary="Provider webhook, any tenant's app (deprecated: use /v1/webhooks/{provider}/{app_id})",
    responses=_RESPONSES,
    openapi_extra=_BODY,
    deprecated=True,
)
async def receive_webhook(gw: GatewayDep, request: Request, provider: _ProviderId) -> WebhookAck:
    """Deprecated: the vault tries every app's secret for the provider. Kept for existing setups."""
    return await _receive(gw, request, provider, None)


async def _receive(gw: Gateway, request: Request, provider: str, app_id: str | None) -> WebhookAck:
    # Counted before the body is read: each delivery costs a key unwrap and a signature check.
    sender = f"{provider}:{client_address(request)}"
    await rate_limits.admit(gw.runtime, gw.limits.webhooks_per_address, sender)
    # Within `webhook_max_body_bytes`: RequestBodyLimitMiddleware refused larger bodies unread.
    body = await request.body()
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        # Every provider signs JSON, form or JWT text; the bus carries the body as UTF-8 text.
        raise Problem(400, "invalid_request", "the webhook body is not UTF-8 text") from None
    ingress = WebhookIngress(gw.bus)
    verdict = await ingress.verify(provider, body, dict(request.headers), app_id)
    if not verdict.verified and verdict.scheme == "google_risc":
        # RFC 8935 (push delivery of security event tokens): a refused token is a 400 with `err`.
        err = _SET_ERRORS.get(verdict.reason or "", "invalid_request")
        raise Problem(400, "invalid_token", f"token not accepted: {verdict.reason}", extra={"err": err})
    if not verdict.verified:
        raise Problem(401, "invalid_signature", f"webhook not verified: {verdict.reason or 'rejected'}")
    if verdict.challenge is not None:
        return WebhookAck(status="challenge", challenge=verdict.challenge)
    async with gw.runtime.single_statement(wake_relay=False) as conn:
        if await ingress.seen(conn, provider, verdict, body):
            return WebhookAck(status="duplicate")
    affected = await ingress.revoke_matching(verdict)
    async with gw.runtime.driver_transaction() as conn:
        recorded = await ingress.record(conn, provider, verdict, body, affected)
    return WebhookAck(status="accepted" if recorded else "duplicate", revoked_connections=len(affected))
