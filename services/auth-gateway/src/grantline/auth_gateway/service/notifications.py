"""A tenant's webhook endpoints for connection lifecycle notifications: the gateway asks the notifier.

The tenant always comes from the caller's API key, so a tenant registers, sees and removes only its
own endpoints and deliveries.
"""

from __future__ import annotations

from grantline.auth_gateway.adapters.bus import Bus
from grantline.auth_gateway.service.principal import Principal
from grantline.contract import notifier as contract


async def create_endpoint(
    bus: Bus, caller: Principal, *, url: str, description: str, event_types: list[str]
) -> contract.EndpointCreated:
    """A new endpoint with its signing secret (shown once)."""
    return await bus.ask(
        contract.SUBJECT_ENDPOINT_CREATE,
        contract.CreateEndpointRequest(
            tenant_id=caller.tenant_id,
            url=url,
            description=description,
            event_types=event_types,  # type: ignore[arg-type]
        ),
        contract.EndpointCreated,
    )


async def list_endpoints(bus: Bus, caller: Principal) -> list[contract.EndpointInfo]:
    """The caller's tenant's endpoints."""
    reply = await bus.ask(
        contract.SUBJECT_ENDPOINT_LIST,
        contract.ListEndpointsRequest(tenant_id=caller.tenant_id),
        contract.EndpointList,
    )
    return reply.endpoints


async def delete_endpoint(bus: Bus, caller: Principal, endpoint_id: str) -> None:
    """Remove one of the tenant's endpoints (404 for anyone else's)."""
    await bus.ask(
        contract.SUBJECT_ENDPOINT_DELETE,
        contract.DeleteEndpointRequest(tenant_id=caller.tenant_id, endpoint_id=endpoint_id),
        contract.EndpointDeleted,
    )


async def list_deliveries(
    bus: Bus, caller: Principal, *, endpoint_id: str | None, status: str | None, limit: int
) -> list[contract.DeliveryInfo]:
    """The tenant's most recent deliveries and their status."""
    reply = await bus.ask(
        contract.SUBJECT_DELIVERY_LIST,
        contract.ListDeliveriesRequest(
            tenant_id=caller.tenant_id,
            endpoint_id=endpoint_id,
            status=status,  # type: ignore[arg-type]
            limit=limit,
        ),
        contract.DeliveryList,
    )
    return reply.deliveries
