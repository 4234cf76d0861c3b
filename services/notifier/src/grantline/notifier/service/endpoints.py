"""Use cases of a tenant's webhook endpoints and the list of their deliveries (asked by the gateway)."""

from __future__ import annotations

import base64
import secrets
import uuid

from pydantic import SecretStr

from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.notifier import (
    CreateEndpointRequest,
    DeleteEndpointRequest,
    DeliveryList,
    EndpointCreated,
    EndpointDeleted,
    EndpointInfo,
    EndpointList,
    ListDeliveriesRequest,
)
from grantline.notifier.adapters import repository
from grantline.notifier.adapters.sealing import SecretSealer
from grantline.notifier.domain.endpoint_urls import UnsafeEndpointUrl, check_endpoint_url
from grantline.runtime.db.driver import DriverConnection


def _info(stored: repository.StoredEndpoint) -> EndpointInfo:
    return EndpointInfo(
        endpoint_id=stored.endpoint_id,
        url=stored.url,
        description=stored.description,
        event_types=stored.event_types,  # type: ignore[arg-type]
        created_at=stored.created_at,
    )


def new_signing_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def create_endpoint(
    conn: DriverConnection,
    sealer: SecretSealer,
    request: CreateEndpointRequest,
    *,
    allow_private: bool,
    max_endpoints: int,
) -> EndpointCreated | ErrorReply:
    """Register an endpoint; its signing secret is returned here only, and kept sealed."""
    try:
        url = check_endpoint_url(request.url, allow_private=allow_private)
    except UnsafeEndpointUrl as error:
        return ErrorReply.of(ErrorCode.INVALID_REQUEST, str(error))
    if await repository.count_endpoints(conn, request.tenant_id) >= max_endpoints:
        return ErrorReply.of(ErrorCode.CONFLICT, f"a tenant may register at most {max_endpoints} endpoints")
    endpoint_id = f"ep_{uuid.uuid4().hex}"
    secret = new_signing_secret()
    stored = await repository.insert_endpoint(
        conn,
        endpoint_id=endpoint_id,
        tenant_id=request.tenant_id,
        url=url,
        description=request.description,
        event_types=sorted(set(request.event_types)),
        sealed_secret=sealer.seal(secret, endpoint_id=endpoint_id, tenant_id=request.tenant_id),
    )
    return EndpointCreated(endpoint=_info(stored), secret=SecretStr(secret))


async def list_endpoints(conn: DriverConnection, tenant_id: str) -> EndpointList:
    """The tenant's endpoints (never their secrets)."""
    return EndpointList(endpoints=[_info(e) for e in await repository.list_endpoints(conn, tenant_id)])


async def delete_endpoint(
    conn: DriverConnection, request: DeleteEndpointRequest
) -> EndpointDeleted | ErrorReply:
    """Remove an endpoint and its deliveries; another tenant's is not found."""
    if not await repository.delete_endpoint(conn, request.tenant_id, request.endpoint_id):
        return ErrorReply.of(ErrorCode.NOT_FOUND, "endpoint not found")
    return EndpointDeleted(endpoint_id=request.endpoint_id)


async def list_deliveries(conn: DriverConnection, request: ListDeliveriesRequest) -> DeliveryList:
    """The tenant's most recent deliveries and where each stands."""
    deliveries = await repository.list_deliveries(
        conn,
        request.tenant_id,
        endpoint_id=request.endpoint_id,
        status=request.status,
        limit=request.limit,
    )
    return DeliveryList(deliveries=deliveries)
