"""``satisfaction.check`` against the real service: every requirement shape, and bad input."""

import asyncio
from collections.abc import AsyncIterator
from functools import partial

import pytest
import pytest_asyncio
from fixtures.waiting import wait_for_async
from nats.aio.client import Client
from satisfaction_harness import check, granted, make_service, publish, running

from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.satisfaction import SatisfactionReport
from grantline.runtime.service_runtime import ServiceRuntime
from grantline.satisfaction.adapters.catalogue_tables import set_definition_enabled

EMAIL = ["agentmail", "gmail", "outlook_mail", "sendgrid", "smartlead"]


@pytest_asyncio.fixture(loop_scope="session")
async def service(nats_url: str, database_url: str, nats_client: Client) -> AsyncIterator[ServiceRuntime]:
    runtime = make_service(nats_url, database_url)
    async with running(runtime):
        # alice: Google with gmail.readonly, and GitHub; the workspace: Salesforce shared, Slack not shared.
        await publish(
            nats_client, granted("c-google", scopes=["gmail.readonly"], account="alice@example.com")
        )
        await publish(nats_client, granted("c-github", provider="github", scopes=["repo"]))
        await publish(
            nats_client, granted("w-sf", user="workspace", provider="salesforce", shared_fallback=True)
        )
        await publish(nats_client, granted("w-slack", user="workspace", provider="slack"))
        await wait_for_async(lambda: _satisfied(nats_client, ["gmail", "github", "salesforce"]), timeout=10)
        await wait_for_async(lambda: _mirrored(runtime, 4), timeout=10)
        yield runtime


async def _satisfied(nc: Client, requirements: list[object]) -> bool:
    reply = await check(nc, "alice", requirements)
    return isinstance(reply, SatisfactionReport) and reply.is_satisfied


async def _mirrored(runtime: ServiceRuntime, count: int) -> bool:
    from sqlalchemy import func, select

    from grantline.satisfaction.adapters.tables import connection_mirror

    async with runtime.sessions() as session:
        return (await session.scalar(select(func.count()).select_from(connection_mirror))) == count


async def report(
    nc: Client, requirements: list[object], user: str = "alice", **extra: object
) -> SatisfactionReport:
    reply = await check(nc, user, requirements, **extra)
    assert isinstance(reply, SatisfactionReport), reply
    return reply


def entry(reply: SatisfactionReport, index: int = 0) -> dict[str, object]:
    return reply.requirements[index].model_dump()


async def test_category_requirement_matches_the_documented_example(
    service: ServiceRuntime, nats_client: Client
) -> None:
    reply = await report(nats_client, [{"type": "category", "id": "email", "is_required": True}])
    assert entry(reply) == {
        "type": "category",
        "id": "email",
        "is_required": True,
        "category_name": "Email",
        "is_satisfied": True,
        "satisfied_by": ["gmail"],
        "available": EMAIL,
        "missing_scopes": [],
    }
    assert reply.is_satisfied and reply.missing == [] and reply.message is None


async def test_short_form_and_specific_app_of_a_provider(
    service: ServiceRuntime, nats_client: Client
) -> None:
    reply = await report(nats_client, ["github", {"type": "specific", "id": "gmail"}, "gitlab"])
    github, gmail, gitlab = (entry(reply, i) for i in range(3))
    assert github["is_satisfied"] and github["satisfied_by"] == ["github"]
    assert github["category_name"] == "Code repository"
    assert gmail["is_satisfied"] and gmail["satisfied_by"] == ["gmail"] and gmail["available"] == ["gmail"]
    assert not gitlab["is_satisfied"] and gitlab["satisfied_by"] == [] and gitlab["available"] == ["gitlab"]
    assert not reply.is_satisfied
    assert [m.id for m in reply.missing] == ["gitlab"]
    assert reply.message == "Missing required connections: gitlab"


async def test_scopes_the_connection_lacks_are_listed(service: ServiceRuntime, nats_client: Client) -> None:
    reply = await report(
        nats_client,
        [
            {
                "type": "specific",
                "id": "gmail",
                "scopes": ["gmail.readonly", "gmail.send"],
                "label": "Gmail (send)",
            }
        ],
    )
    gmail = entry(reply)
    assert not gmail["is_satisfied"] and gmail["missing_scopes"] == ["gmail.send"]
    assert reply.message == "Missing required connections: Gmail (send)"


async def test_optional_requirements_never_block(service: ServiceRuntime, nats_client: Client) -> None:
    reply = await report(nats_client, [{"type": "specific", "id": "notion", "is_required": False}, "github"])
    assert reply.is_satisfied and not entry(reply)["is_satisfied"]


async def test_app_stage_and_skill_requirements_are_merged(
    service: ServiceRuntime, nats_client: Client
) -> None:
    reply = await report(
        nats_client,
        [{"type": "specific", "id": "github", "is_required": False}],
        stages=[{"id": "draft", "requirements": ["github", {"type": "category", "id": "email"}]}],
        skills=[{"id": "send-mail", "requirements": [{"type": "category", "id": "email", "scopes": ["x"]}]}],
    )
    assert [(e.type, e.id, e.is_required) for e in reply.requirements] == [
        ("specific", "github", True),
        ("category", "email", True),
    ]
    email = entry(reply, 1)
    assert not email["is_satisfied"] and email["missing_scopes"] == ["x"]  # the skill's scope was merged in


async def test_a_skill_that_is_not_required_never_holds_the_app(
    service: ServiceRuntime, nats_client: Client
) -> None:
    # alice has GitHub, not Notion or an email provider: the optional skill's needs are reported only.
    skills = [
        {"id": "code", "requirements": ["github"]},
        {"id": "notes", "required": False, "requirements": ["notion"]},
    ]
    reply = await report(nats_client, [], skills=skills)
    assert reply.is_satisfied and reply.missing == []
    assert [(e.id, e.is_required, e.is_satisfied) for e in reply.requirements] == [
        ("github", True, True),
        ("notion", False, False),
    ]
    # A required skill still holds the app, and the app's own requirement stays required.
    held = await report(
        nats_client, ["notion"], skills=[{"id": "notes", "required": False, "requirements": ["notion"]}]
    )
    assert not held.is_satisfied and [m.id for m in held.missing] == ["notion"]


async def test_a_stage_is_checked_on_its_own(service: ServiceRuntime, nats_client: Client) -> None:
    stages = [
        {"id": "research", "requirements": ["github"]},
        {"id": "publish", "requirements": ["notion"]},
    ]
    research = await report(nats_client, [], stages=stages, stage="research")
    assert research.is_satisfied and [e.id for e in research.requirements] == ["github"]
    publish_stage = await report(nats_client, [], stages=stages, stage="publish")
    assert not publish_stage.is_satisfied and [m.id for m in publish_stage.missing] == ["notion"]
    everything = await report(nats_client, [], stages=stages)
    assert [e.id for e in everything.requirements] == ["github", "notion"] and not everything.is_satisfied
    unknown = await check(nats_client, "alice", [], stages=stages, stage="deploy")
    assert isinstance(unknown, ErrorReply) and unknown.error.code == ErrorCode.INVALID_REQUEST
    assert "deploy" in unknown.error.message


async def test_workspace_connection_counts_only_with_shared_fallback(
    service: ServiceRuntime, nats_client: Client
) -> None:
    reply = await report(nats_client, ["salesforce", "slack"], user="bob")
    assert [e.is_satisfied for e in reply.requirements] == [True, False]


async def test_unknown_and_disabled_definitions(service: ServiceRuntime, nats_client: Client) -> None:
    unknown = entry(await report(nats_client, ["no_such_provider"]))
    assert unknown["category_name"] is None and unknown["available"] == [] and not unknown["is_satisfied"]
    async with service.transaction() as session:
        assert await set_definition_enabled(session, "outlook_mail", False)
    await service.catalogue.refresh(partial(service.driver_transaction, wake_relay=False))  # type: ignore[attr-defined]
    email = entry(await report(nats_client, [{"type": "category", "id": "email"}]))
    assert email["available"] == [d for d in EMAIL if d != "outlook_mail"]
    outlook = entry(await report(nats_client, ["outlook_mail"]))
    assert outlook["available"] == [] and outlook["category_name"] == "Email"


async def test_seeding_again_keeps_an_operator_disabled_definition_disabled(
    service: ServiceRuntime, nats_client: Client
) -> None:
    async with service.transaction() as session:
        await set_definition_enabled(session, "gitlab", False)
    restarted = make_service(service.settings.nats_url, service.settings.database_url)
    async with running(restarted):  # start-up seeds the catalogue again
        assert not restarted.catalogue.view.is_enabled("gitlab")  # type: ignore[attr-defined]
        assert restarted.catalogue.view.is_enabled("github")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ({"requirements": ["github", {"type": "specific", "id": "gmail", "scope": ["x"]}]}, "requirements.1"),
        ({"requirements": [{"type": "project", "id": "x"}]}, "requirements.0"),
        (
            {"requirements": [], "skills": [{"id": "s", "requirements": [{"type": "specific", "id": " "}]}]},
            "skills.0",
        ),
        ({"requirements": [{"type": "specific", "id": "gmail", "scopes": ["a", " "]}]}, "requirements.0"),
    ],
)
async def test_bad_requirements_get_an_error_naming_the_path(
    service: ServiceRuntime, nats_client: Client, extra: dict[str, object], where: str
) -> None:
    body = {"tenant_id": "tenant-a", "user_id": "alice", **extra}
    import json

    reply = await nats_client.request("satisfaction.check.tenant-a", json.dumps(body).encode(), timeout=5)
    error = ErrorReply.model_validate_json(reply.data)
    assert error.error.code == ErrorCode.INVALID_REQUEST
    assert where in error.error.message


async def test_malformed_request_gets_an_error_reply(service: ServiceRuntime, nats_client: Client) -> None:
    for body in (b"not json", b"{}", b'{"tenant_id": "tenant-a", "user_id": "u", "requirements": "github"}'):
        reply = await nats_client.request("satisfaction.check.tenant-a", body, timeout=5)
        assert ErrorReply.model_validate_json(reply.data).error.code == ErrorCode.INVALID_REQUEST


async def test_concurrent_checks_of_different_users_each_get_their_own_report(
    service: ServiceRuntime, nats_client: Client
) -> None:
    # Checks in flight together share one mirror read; each must still answer for its own user.
    users = ["alice", "bob"] * 15
    replies = await asyncio.gather(*(report(nats_client, ["gmail", "salesforce"], user=u) for u in users))
    for user, reply in zip(users, replies, strict=True):
        gmail = entry(reply, 0)
        assert gmail["is_satisfied"] is (user == "alice"), (user, gmail)
        assert entry(reply, 1)["is_satisfied"] is True  # the workspace's shared Salesforce counts for both


async def test_a_check_for_another_tenant_than_the_subject_is_refused(
    service: ServiceRuntime, nats_client: Client
) -> None:
    # A runner may publish on its own tenants' subjects only; the body must not name another tenant.
    import json

    body = {"tenant_id": "tenant-b", "user_id": "alice", "requirements": ["github"]}
    reply = await nats_client.request("satisfaction.check.tenant-a", json.dumps(body).encode(), timeout=5)
    error = ErrorReply.model_validate_json(reply.data)
    assert error.error.code == ErrorCode.FORBIDDEN
