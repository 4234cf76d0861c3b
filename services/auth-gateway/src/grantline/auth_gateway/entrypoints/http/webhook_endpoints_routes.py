"""`/v1/webhook-endpoints`: where Grantline tells the tenant about connection lifecycle events.

Deliveries are signed in the style of Standard Webhooks (`webhook-id`, `webhook-timestamp`,
`webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`); the notifier keeps them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from grantline.auth_gateway.entrypoints.http.context import AdminDep, GatewayDep
from grantline.auth_gateway.entrypoints.http.problem_details import PROBLEM_RESPONSES
from grantline.auth_gateway.service import notifications
from grantline.contract.notifier import DeliveryInfo, DeliveryStatus, EndpointInfo, NotificationType

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhook endpoints"], responses=PROBLEM_RESPONSES)

ENDPOINT_ID_PATTERN = r"^ep_[a-z0-9]{1,60}$"
EndpointIdPath = Annotated[str, Path(pattern=ENDPOINT_ID_PATTERN, description="endpoint id (ep_...)")]


class WebhookEndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1, max_length=2000, description="https URL on a public address (http only in development)"
    )
    description: str = Field(default="", max_length=500)
    event_types: list[NotificationType] = Field(
        default=[], description="the notification types to send; empty: every type"
    )


class WebhookEndpointView(BaseModel):
    endpoint_id: str
    url: str
    description: str
    event_types: list[str]
    created_at: str

    @classmethod
    def of(cls, info: EndpointInfo) -> WebhookEndpointView:
        """The API view of an endpoint."""
        return cls(
            endpoint_id=info.endpoint_id,
            url=info.url,
            description=info.description,
            event_types=list(info.event_types),
            created_at=info.created_at.isoformat(),
        )


class WebhookEndpointCreatedView(WebhookEndpointView):
    secret: str = Field(description="`whsec_...`: verify deliveries with it; shown once")


class WebhookEndpointListView(BaseModel):
    endpoints: list[WebhookEndpointView]


class WebhookDeliveryListView(BaseModel):
    deliveries: list[DeliveryInfo]


@router.post(
    "", status_code=201, response_model=WebhookEndpointCreatedView, summary="Register a webhook endpoint"
)
async def create_endpoint(
    gw: GatewayDep, caller: AdminDep, body: WebhookEndpointIn
) -> WebhookEndpointCreatedView:
    """Connection lifecycle notifications will be POSTed to `url`, signed with `secret` (not shown again)."""
    created = await notifications.create_endpoint(
        gw.bus, caller, url=body.url, description=body.description, event_types=list(body.event_types)
    )
    return WebhookEndpointCreatedView(
        **WebhookEndpointView.of(created.endpoint).model_dump(), secret=created.secret.get_secret_value()
    )


@router.get("", response_model=WebhookEndpointListView, summary="The tenant's webhook endpoints")
async def list_endpoints(gw: GatewayDep, caller: AdminDep) -> WebhookEndpointListView:
    found = await notifications.list_endpoints(gw.bus, caller)
    return WebhookEndpointListView(endpoints=[WebhookEndpointView.of(info) for info in found])


@router.delete("/{endpoint_id}", status_code=204, summary="Remove a webhook endpoint")
async def delete_endpoint(gw: GatewayDep, caller: AdminDep, endpoint_id: EndpointIdPath) -> Response:
    """Nothing more is sent to it; its delivery history goes with it."""
    await notifications.delete_endpoint(gw.bus, caller, endpoint_id)
    return Response(status_code=204)


@router.get(
    "/deliveries", response_model=WebhookDeliveryListView, summary="Recent deliveries and their status"
)
async def list_deliveries(
    gw: GatewayDep,
    caller: AdminDep,
    endpoint_id: Annotated[str | None, Query(pattern=ENDPOINT_ID_PATTERN)] = None,
    status: Annotated[DeliveryStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> WebhookDeliveryListView:
    """Newest first: `pending` (retried with backoff), `succeeded` or `failed` (given up)."""
    found = await notifications.list_deliveries(
        gw.bus, caller, endpoint_id=endpoint_id, status=status, limit=limit
    )
    return WebhookDeliveryListView(deliveries=found)
