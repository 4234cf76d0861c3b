"""A tenant's own runner identities: the gateway forwards to runner-auth over NATS.

The tenant always comes from the caller's API key, so a tenant creates runners for itself only and
sees and revokes only its own; platform-wide and multi-tenant runners are made with the CLI.
"""

from __future__ import annotations

from grantline.auth_gateway.adapters.bus import Bus
from grantline.auth_gateway.service.principal import Principal
from grantline.contract import runner_identities as contract


async def create_runner(bus: Bus, caller: Principal, *, name: str) -> contract.RunnerCreated:
    """A new runner for the caller's tenant, with its secret (shown once)."""
    return await bus.ask(
        contract.SUBJECT_RUNNERS_CREATE,
        contract.CreateRunnerRequest(tenant_id=caller.tenant_id, name=name, actor=caller.actor),
        contract.RunnerCreated,
    )


async def list_runners(bus: Bus, caller: Principal, *, include_revoked: bool) -> list[contract.RunnerInfo]:
    """The caller's tenant's own runners."""
    reply = await bus.ask(
        contract.SUBJECT_RUNNERS_LIST,
        contract.ListRunnersRequest(tenant_id=caller.tenant_id, include_revoked=include_revoked),
        contract.RunnerList,
    )
    return reply.runners


async def revoke_runner(bus: Bus, caller: Principal, runner_id: str) -> contract.RunnerInfo:
    """Revoke one of the caller's tenant's runners (404 for anyone else's)."""
    reply = await bus.ask(
        contract.SUBJECT_RUNNERS_REVOKE,
        contract.RevokeRunnerRequest(tenant_id=caller.tenant_id, runner_id=runner_id, actor=caller.actor),
        contract.RunnerRevoked,
    )
    return reply.runner
