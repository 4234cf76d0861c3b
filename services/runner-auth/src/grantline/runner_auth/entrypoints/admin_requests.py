"""``runner_auth.runners.create|list|revoke``: a tenant's own runners, asked by the auth gateway.

The gateway names the tenant from the caller's API key; a tenant creates runners for itself only,
and sees and revokes only runners created for it alone. Platform-wide and multi-tenant runners are
managed from the CLI. Errors are replies.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel

from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.runner_identities import (
    SUBJECT_RUNNERS_CREATE,
    SUBJECT_RUNNERS_LIST,
    SUBJECT_RUNNERS_REVOKE,
    CreateRunnerRequest,
    ListRunnersRequest,
    RevokeRunnerRequest,
    RunnerCreated,
    RunnerList,
    RunnerRevoked,
)
from grantline.runner_auth.domain.runner import RunnerError, UnknownRunner
from grantline.runner_auth.service import runners
from grantline.runner_auth.service.revocations import Kicker
from grantline.runtime.nats.request_reply import serving
from grantline.runtime.nats.secret_wire import encode_with_secrets
from grantline.runtime.service_runtime import ServiceRuntime

log = logging.getLogger(__name__)


def serve_runner_admin(runtime: ServiceRuntime, kicker: Kicker | None) -> None:
    """Register the three admin request subjects."""

    async def create(request: CreateRunnerRequest) -> BaseModel:
        try:
            async with runtime.driver_transaction() as conn:
                issued = await runners.create_runner(
                    conn, tenants=[request.tenant_id], name=request.name, created_by=request.actor
                )
        except RunnerError as error:
            return ErrorReply.of(ErrorCode.INVALID_REQUEST, str(error))
        return RunnerCreated(runner=issued.runner.info(), secret=issued.secret)

    async def list_(request: ListRunnersRequest) -> BaseModel:
        async with runtime.single_statement(wake_relay=False) as conn:
            found = await runners.list_runners(
                conn, tenant_id=request.tenant_id, include_revoked=request.include_revoked
            )
        return RunnerList(runners=[runner.info() for runner in found])

    async def revoke(request: RevokeRunnerRequest) -> BaseModel:
        try:
            async with runtime.driver_transaction() as conn:
                revoked = await runners.revoke_runner(
                    conn, request.runner_id, tenant_id=request.tenant_id, revoked_by=request.actor
                )
        except UnknownRunner as error:
            return ErrorReply.of(ErrorCode.NOT_FOUND, str(error))
        if kicker is not None:
            # Committed: close its connections now. The sweep retries if this fails.
            try:
                await kicker.kick_user(revoked.runner_id)
            except Exception as error:
                log.warning(
                    "kick failed", extra={"runner_id": revoked.runner_id, "error": type(error).__name__}
                )
        return RunnerRevoked(runner=revoked.info())

    subscriptions = [
        # The create reply is the one place a runner secret leaves runner-auth (shown once).
        serving(
            "runner-auth", SUBJECT_RUNNERS_CREATE, CreateRunnerRequest, create, encode=encode_with_secrets
        ),
        serving("runner-auth", SUBJECT_RUNNERS_LIST, ListRunnersRequest, list_),
        serving("runner-auth", SUBJECT_RUNNERS_REVOKE, RevokeRunnerRequest, revoke),
    ]

    runtime.serve_requests(*subscriptions)
