"""Issue 18 item 12: a tenant's own provider (announced by the vault) is first-class in satisfaction,
for that tenant only: checks, held runs released on connect, run grants, revocation to in-flight runs
and the ``app_user_connect`` view; removing it makes requirements naming it unknown again."""

import asyncio

from fixtures.waiting import wait_for_async
from nats.aio.client import Client
from satisfaction_harness import TENANT, at, granted, idle, make_service, publish, resolved, revoked, running
from sqlalchemy import select

from grantline.contract import RunAdmitted, RunHeld
from grantline.contract.connections import (
    ProviderEnablementChanged,
    TenantProviderApp,
    TenantProviderDefined,
    TenantProviderRemoved,
)
from grantline.contract.run_grants import unverified_claims
from grantline.runner import RunnerClient
from grantline.runtime.service_runtime import ServiceRuntime
from grantline.satisfaction.adapters.tables import app_user_connect

OTHER_TENANT = "tenant-b"


def defined(tenant_id: str = TENANT, when: float = 0) -> TenantProviderDefined:
    return TenantProviderDefined(
        tenant_id=tenant_id,
        provider="acme",
        name="Acme",
        category="code",
        auth="oauth2",
        apps=[TenantProviderApp(id="acme_repos", name="Acme repositories", category="code")],
        occurred_at=at(when),
    )


async def _view_rows(service: ServiceRuntime, tenant_id: str) -> list[tuple[str, bool]]:
    async with service.sessions() as session:
        query = select(app_user_connect.c.provider, app_user_connect.c.connected).where(
            app_user_connect.c.tenant_id == tenant_id, app_user_connect.c.user_id == "alice"
        )
        return [tuple(row) for row in (await session.execute(query)).all()]  # type: ignore[misc]


async def test_a_tenants_own_provider_satisfies_its_runs_and_no_other_tenants(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    service = make_service(nats_url, database_url)
    runner = RunnerClient(nats_client, timeout=10)
    async with running(service):
        held = await runner.request_run(TENANT, "r-acme", "alice", "app-1", ["acme_repos"], trigger="api")
        assert isinstance(held, RunHeld) and held.message == "Missing required connections: acme_repos"

        await publish(nats_client, defined())
        # The other tenant connects a provider it calls "acme" too (it never defined one).
        await publish(nats_client, granted("c-b-acme", provider="acme", tenant_id=OTHER_TENANT))
        await publish(nats_client, granted("c-acme", provider="acme"))
        admitted = await runner.wait_until_admitted("r-acme")
        assert isinstance(admitted, RunAdmitted) and admitted.resumed
        assert "acme" in unverified_claims(admitted.grant)["prv"]
        report = await runner.check(TENANT, "alice", ["acme", {"type": "category", "id": "code"}])
        assert report.is_satisfied
        assert report.requirements[1].satisfied_by == ["acme_repos"]
        assert ("acme", True) in await _view_rows(service, TENANT)

        other = await runner.check(OTHER_TENANT, "alice", ["acme", "acme_repos"])
        assert not other.is_satisfied and [s.available for s in other.requirements] == [[], []]
        refused = await runner.request_run(OTHER_TENANT, "r-b", "alice", "app-1", ["acme"], trigger="api")
        assert isinstance(refused, RunHeld)

        # Revocation reaches the in-flight run that resolved the tenant provider's connection.
        await publish(nats_client, resolved("r-acme", "c-acme", provider="acme"))
        await publish(nats_client, revoked("c-acme", provider="acme"))
        told = await asyncio.wait_for(anext(runner.revocations("r-acme")), timeout=10)
        assert (told.connection_id, told.provider) == ("c-acme", "acme")

        # Removed: requirements naming it are unknown again (an older definition delivered late
        # does not bring it back).
        await publish(nats_client, granted("c-acme-2", provider="acme", when=200))
        await publish(
            nats_client, TenantProviderRemoved(tenant_id=TENANT, provider="acme", occurred_at=at(300))
        )
        await publish(nats_client, defined(when=250))
        await wait_for_async(lambda: idle(service), timeout=10)
        report = await runner.check(TENANT, "alice", ["acme"])
        assert not report.is_satisfied and report.requirements[0].available == []
    await runner.close()


async def test_a_run_held_before_the_definition_arrives_is_admitted_when_it_does(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    """The user's connection is already mirrored (a provider removed, then defined again)."""
    service = make_service(nats_url, database_url)
    runner = RunnerClient(nats_client, timeout=10)
    async with running(service):
        await publish(nats_client, granted("c-acme", provider="acme"))
        held = await runner.request_run(TENANT, "r-late", "alice", "app-1", ["acme"], trigger="manual")
        assert isinstance(held, RunHeld)
        await publish(nats_client, defined())
        admitted = await runner.wait_until_admitted("r-late")
        assert isinstance(admitted, RunAdmitted) and admitted.resumed
    await runner.close()


async def test_a_provider_the_tenant_switches_off_holds_its_runs_until_switched_on(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    """Issue 18 item 5: `connections.provider_enabled` for one tenant; the other tenant is unaffected."""
    service = make_service(nats_url, database_url)
    runner = RunnerClient(nats_client, timeout=10)
    async with running(service):
        await publish(nats_client, granted("c-google"))
        await publish(nats_client, granted("c-b-google", tenant_id=OTHER_TENANT))
        await publish(
            nats_client, ProviderEnablementChanged(tenant_id=TENANT, provider="google", enabled=False)
        )
        await wait_for_async(lambda: idle(service), timeout=10)
        held = await runner.request_run(TENANT, "r-off", "alice", "app-1", ["gmail"], trigger="api")
        assert isinstance(held, RunHeld) and held.message == "Missing required connections: gmail (disabled)"
        assert (await runner.check(OTHER_TENANT, "alice", ["gmail"])).is_satisfied

        await publish(
            nats_client, ProviderEnablementChanged(tenant_id=TENANT, provider="google", enabled=True)
        )
        admitted = await runner.wait_until_admitted("r-off")
        assert isinstance(admitted, RunAdmitted) and admitted.resumed
    await runner.close()
