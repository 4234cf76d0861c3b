"""`/v1/runners`: NATS identities for the tenant's own app runners (runner-auth keeps them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from grantline.auth_gateway.entrypoints.http.context import AdminDep, GatewayDep
from grantline.auth_gateway.entrypoints.http.problem_details import PROBLEM_RESPONSES
from grantline.auth_gateway.entrypoints.http.runner_views import (
    RunnerCreatedView,
    RunnerIn,
    RunnerListView,
    RunnerView,
)
from grantline.auth_gateway.service import runners
from grantline.contract.runner_identities import RUNNER_ID_PATTERN

router = APIRouter(prefix="/v1/runners", tags=["runners"], responses=PROBLEM_RESPONSES)

RunnerId = Annotated[str, Path(pattern=RUNNER_ID_PATTERN, description="runner id (rnr_...)")]


@router.post("", status_code=201, response_model=RunnerCreatedView, summary="Create a runner identity")
async def create_runner(gw: GatewayDep, caller: AdminDep, body: RunnerIn) -> RunnerCreatedView:
    """A runner for this tenant: connect to NATS with `runner_id` as user and `secret` as password
    (and `inbox_prefix` as the reply-inbox prefix). The secret is not shown again."""
    created = await runners.create_runner(gw.bus, caller, name=body.name)
    return RunnerCreatedView(
        **RunnerView.of(created.runner).model_dump(), secret=created.secret.get_secret_value()
    )


@router.get("", response_model=RunnerListView, summary="The tenant's runners")
async def list_runners(
    gw: GatewayDep,
    caller: AdminDep,
    include_revoked: Annotated[bool, Query(description="revoked runners too")] = False,
) -> RunnerListView:
    found = await runners.list_runners(gw.bus, caller, include_revoked=include_revoked)
    return RunnerListView(runners=[RunnerView.of(info) for info in found])


@router.delete("/{runner_id}", response_model=RunnerView, summary="Revoke a runner")
async def revoke_runner(gw: GatewayDep, caller: AdminDep, runner_id: RunnerId) -> RunnerView:
    """It cannot connect again, and its open connections are closed within seconds."""
    return RunnerView.of(await runners.revoke_runner(gw.bus, caller, runner_id))
