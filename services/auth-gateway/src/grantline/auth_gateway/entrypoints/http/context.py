"""What every route needs: the gateway wiring (`service.context.Gateway`) and who is calling."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from grantline.auth_gateway.entrypoints.client_address import client_address
from grantline.auth_gateway.service import rate_limits
from grantline.auth_gateway.service.context import Gateway
from grantline.auth_gateway.service.principal import Principal, require_api_key


def gateway(request: Request) -> Gateway:
    """The gateway wiring, attached to the app at creation."""
    return request.app.state.gateway  # type: ignore[no-any-return]


_bearer = HTTPBearer(auto_error=False, description="A tenant API key, or a connect-session token")


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    connect_session: Annotated[
        str | None,
        Query(
            max_length=300,
            description="A connect-session token, for browser pages that cannot set headers",
            include_in_schema=False,
        ),
    ] = None,
) -> Principal:
    """The caller: a tenant API key or a connect session (header, or `connect_session` query)."""
    value = credentials.credentials if credentials else connect_session
    gw = gateway(request)
    return await rate_limits.authenticate(gw.runtime, gw.limits, client_address(request), value)


async def tenant_admin(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    """The caller, who must hold the tenant API key."""
    return require_api_key(caller)


GatewayDep = Annotated[Gateway, Depends(gateway)]
CallerDep = Annotated[Principal, Depends(principal)]
AdminDep = Annotated[Principal, Depends(tenant_admin)]
