"""Runner identities: the NATS permissions a runner gets, and the admin requests of runner-auth.

A runner connects to NATS with its runner id as user and its secret as password; runner-auth answers
the server's auth callout with a user JWT carrying ``runner_permissions`` (decision 3 of issue 15).
The template lives here, beside the contract's subjects, so runner-auth, the docs and the tests use
the one definition.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import Field, SecretStr

from grantline.contract.envelope import Message

SUBJECT_RUNNERS_CREATE = "runner_auth.runners.create"
SUBJECT_RUNNERS_LIST = "runner_auth.runners.list"
SUBJECT_RUNNERS_REVOKE = "runner_auth.runners.revoke"

# Tenant ids are subject tokens (the gateway makes UUIDs); a runner id is one too.
TENANT_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
RUNNER_ID = re.compile(r"^rnr_[a-z0-9]{20,64}$")
RUNNER_ID_PATTERN = RUNNER_ID.pattern

# Subject families that carry one tenant's data and end with the tenant id (decision 2). A runner
# publishes run announcements, run ends and the requests it makes ...
RUNNER_PUBLISH_FAMILIES = (
    "runs.requested",
    "runs.finished",
    "vault.resolve",
    # A provider refused a resolved token: the vault refreshes it once, or finds the connection dead.
    "vault.report",
    "satisfaction.check",
    "satisfaction.renew_grant",
    # A connect link for a user of the tenant who lacks a connection (the just-in-time path).
    "gateway.connect_link",
)
# ... and follows the outcomes of its runs. Never runs.requested of others, and of the JetStream API only
# its own consumer on RUNNER_OUTCOMES (below): a runner cannot create, read or ack any other consumer
# (attack 4 of issue 15).
RUNNER_SUBSCRIBE_FAMILIES = ("runs.admitted", "runs.held", "runs.connection_revoked")
PLATFORM_WIDE = "*"

# The outcomes a runner follows are also kept for it, so that one published while it reconnects is not
# lost: the stream RUNNER_OUTCOMES sources them from RUNS, and each runner identity has one durable pull
# consumer there, named after the runner id and filtered to its tenants (runner-auth declares it when
# the runner connects and deletes it when the runner is revoked). The runner may only look that
# consumer up, pull from it and acknowledge its messages; it cannot create, change or delete any.
RUNNER_OUTCOMES_STREAM = "RUNNER_OUTCOMES"


def runner_outcome_subjects(tenants: Sequence[str] | None) -> tuple[str, ...]:
    """The outcome subjects of ``tenants`` (``None``: every tenant): the filter of a runner's consumer."""
    tokens = (PLATFORM_WIDE,) if tenants is None else tuple(dict.fromkeys(tenants))
    return tuple(f"{family}.{token}" for token in tokens for family in RUNNER_SUBSCRIBE_FAMILIES)


def runner_consumer_grants(runner_id: str) -> tuple[str, ...]:
    """What a runner may publish to use its own consumer: look it up, pull, acknowledge. Nothing else."""
    return (
        f"$JS.API.CONSUMER.INFO.{RUNNER_OUTCOMES_STREAM}.{runner_id}",
        f"$JS.API.CONSUMER.MSG.NEXT.{RUNNER_OUTCOMES_STREAM}.{runner_id}",
        f"$JS.ACK.{RUNNER_OUTCOMES_STREAM}.{runner_id}.>",
    )


def runner_inbox_prefix(runner_id: str) -> str:
    """The reply-inbox prefix a runner must connect with (``_INBOX.<runner id>``)."""
    return f"_INBOX.{runner_id}"


@dataclass(frozen=True)
class RunnerPermissions:
    """Publish and subscribe allow-lists of one runner (everything else is denied)."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def runner_permissions(runner_id: str, tenants: Sequence[str] | None) -> RunnerPermissions:
    """The permissions of ``runner_id`` on ``tenants`` (``None``: platform-wide, every tenant)."""
    if not RUNNER_ID.match(runner_id):
        raise ValueError(f"invalid runner id {runner_id!r}")
    if tenants is None:
        tokens: tuple[str, ...] = (PLATFORM_WIDE,)
    else:
        if not tenants:
            raise ValueError("a runner serves at least one tenant (or is platform-wide)")
        for tenant in tenants:
            if not TENANT_TOKEN.match(tenant):
                raise ValueError(f"invalid tenant id {tenant!r}")
        tokens = tuple(dict.fromkeys(tenants))
    publish = tuple(f"{family}.{token}" for token in tokens for family in RUNNER_PUBLISH_FAMILIES)
    subscribe = tuple(f"{family}.{token}" for token in tokens for family in RUNNER_SUBSCRIBE_FAMILIES)
    return RunnerPermissions(
        publish=(*publish, *runner_consumer_grants(runner_id)),
        subscribe=(*subscribe, f"{runner_inbox_prefix(runner_id)}.>"),
    )


# -- admin requests (the gateway, for a tenant's own runners) -----------------------------------------

TenantId = Field(min_length=1, max_length=128, pattern=TENANT_TOKEN.pattern)


class RunnerInfo(Message):
    """A runner as administrators see it: never its secret or the secret's hash."""

    runner_id: str
    name: str
    # Empty when platform-wide.
    tenants: list[str]
    platform_wide: bool
    inbox_prefix: str
    created_at: datetime
    revoked_at: datetime | None = None


class CreateRunnerRequest(Message):
    tenant_id: str = TenantId
    name: str = Field(default="", max_length=200)
    actor: str = Field(default="api", max_length=200)


class RunnerCreated(Message):
    """The new runner and its secret: the only time the secret is ever shown."""

    runner: RunnerInfo
    secret: SecretStr


class ListRunnersRequest(Message):
    tenant_id: str = TenantId
    include_revoked: bool = False


class RunnerList(Message):
    runners: list[RunnerInfo]


class RevokeRunnerRequest(Message):
    tenant_id: str = TenantId
    runner_id: str = Field(min_length=1, max_length=100)
    actor: str = Field(default="api", max_length=200)


class RunnerRevoked(Message):
    runner: RunnerInfo
