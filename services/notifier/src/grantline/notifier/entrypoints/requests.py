"""``notifier.endpoints.*`` and ``notifier.deliveries.list``: the gateway's requests for a tenant.

The gateway names the tenant from the caller's API key; errors are replies, never exceptions.
"""

from __future__ import annotations

from pydantic import BaseModel

from grantline.contract.notifier import (
    SUBJECT_DELIVERY_LIST,
    SUBJECT_ENDPOINT_CREATE,
    SUBJECT_ENDPOINT_DELETE,
    SUBJECT_ENDPOINT_LIST,
    CreateEndpointRequest,
    DeleteEndpointRequest,
    ListDeliveriesRequest,
    ListEndpointsRequest,
)
from grantline.notifier.adapters.sealing import SecretSealer
from grantline.notifier.service import endpoints
from grantline.notifier.settings import NotifierSettings
from grantline.runtime.nats.request_reply import serving
from grantline.runtime.nats.secret_wire import encode_with_secrets
from grantline.runtime.service_runtime import ServiceRuntime


def serve_endpoint_requests(
    runtime: ServiceRuntime, settings: NotifierSettings, sealer: SecretSealer
) -> None:
    """Register the four responders (started and stopped with the runtime)."""

    async def create(request: CreateEndpointRequest) -> BaseModel:
        async with runtime.driver_transaction() as conn:
            return await endpoints.create_endpoint(
                conn,
                sealer,
                request,
                allow_private=bool(settings.allow_private_webhook_urls),
                max_endpoints=settings.max_endpoints_per_tenant,
            )

    async def list_all(request: ListEndpointsRequest) -> BaseModel:
        async with runtime.single_statement(wake_relay=False) as conn:
            return await endpoints.list_endpoints(conn, request.tenant_id)

    async def delete(request: DeleteEndpointRequest) -> BaseModel:
        async with runtime.driver_transaction() as conn:
            return await endpoints.delete_endpoint(conn, request)

    async def deliveries(request: ListDeliveriesRequest) -> BaseModel:
        async with runtime.single_statement(wake_relay=False) as conn:
            return await endpoints.list_deliveries(conn, request)

    subscriptions = [
        # The create reply is the one place an endpoint secret leaves the notifier (shown once).
        serving(
            "notifier", SUBJECT_ENDPOINT_CREATE, CreateEndpointRequest, create, encode=encode_with_secrets
        ),
        serving("notifier", SUBJECT_ENDPOINT_LIST, ListEndpointsRequest, list_all),
        serving("notifier", SUBJECT_ENDPOINT_DELETE, DeleteEndpointRequest, delete),
        serving("notifier", SUBJECT_DELIVERY_LIST, ListDeliveriesRequest, deliveries),
    ]

    runtime.serve_requests(*subscriptions)
