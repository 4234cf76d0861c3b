"""``gateway.connect_link.<tenant>``: a connect link for one user, scoped to the providers they lack.

The gateway owns connect sessions, so it mints the link; satisfaction asks for one per missing
requirement of a held run (the link travels in ``runs.held``), and a runner may ask for a fresh one
(``RunnerClient.connect_link``). Runners' NATS permissions cover their own tenants' subjects only,
and the gateway refuses a body whose tenant is not the subject's.
"""

from datetime import datetime

from pydantic import Field

from grantline.contract.envelope import TENANT_ID_PATTERN, Message, ProviderAppName, ProviderId

# Tenant-scoped: ``gateway.connect_link.<tenant>``.
SUBJECT_CONNECT_LINK = "gateway.connect_link"

# A link waits this long for the user by default (the run waits with it); at most an hour.
DEFAULT_LINK_SECONDS = 900
MAX_LINK_SECONDS = 3600


class ConnectLinkRequest(Message):
    tenant_id: str = Field(min_length=1, max_length=128, pattern=TENANT_ID_PATTERN)
    user_id: str = Field(min_length=1, max_length=200)
    # The providers the link may connect (the connect page offers only these); at least one.
    providers: list[ProviderId] = Field(min_length=1, max_length=32)
    expires_in: int = Field(default=DEFAULT_LINK_SECONDS, ge=60, le=MAX_LINK_SECONDS)
    # The held run the link is for, when there is one (recorded for the audit trail of the session).
    run_id: str | None = Field(default=None, max_length=200)
    # New connections of these providers go through the tenant's named app given here (one of
    # `providers`); the others through the provider's default app.
    provider_apps: dict[ProviderId, ProviderAppName] = Field(default_factory=dict, max_length=32)


class ConnectLinkReply(Message):
    """The link to show the user. It holds a single-use connect-session token: kept out of reprs."""

    session_id: str
    url: str = Field(repr=False)
    expires_at: datetime
    providers: list[str]
