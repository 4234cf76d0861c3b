"""What every route needs: the gateway wiring (`service.context.Gateway`) and who is calling."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from grantline.auth_gateway.entrypoints.client_address import client_address
from grantline.auth_gateway.service import rate_limits
from grantline.auth_gateway.service.context import Gateway
from grantline.auth_gateway.service.principal import Principal, require_api_key
from grantline.auth_gateway.service.problems import Problem


def gateway(request: Request) -> Gateway:
    """The gateway wiring, attached to the app at creation."""
    return request.app.state.gateway  # type: ignore[no-any-return]


_bearer = HTTPBearer(auto_error=False, description="A tenant API key, or a connect-session token")


# Query parameters that once carried (or look like they carry) a credential. A URL is kept in
# browser history, proxy and access logs and Referer headers, so a credential there is refused
# outright rather than ignored: the caller learns to move it to the header.
CREDENTIAL_QUERY_PARAMS = frozenset({"connect_session", "session", "api_key", "access_token", "token"})


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller: a tenant API key or a connect-session token, from the Authorization header only."""
    in_url = sorted(CREDENTIAL_QUERY_PARAMS.intersection(request.query_params))
    if in_url:
        raise Problem(
            401,
            "unauthorized",
            f"credentials are accepted only in the Authorization header, never in the URL "
            f"(remove {', '.join(in_url)})",
        )
    value = credentials.credentials if credentials else None
    gw = gateway(request)
    return await rate_limits.authenticate(gw.runtime, gw.limits, client_address(request), value)


async def tenant_admin(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    """The caller, who must hold the tenant API key."""
    return require_api_key(caller)


GatewayDep = Annotated[Gateway, Depends(gateway)]
CallerDep = Annotated[Principal, Depends(principal)]
AdminDep = Annotated[Principal, Depends(tenant_admin)]
