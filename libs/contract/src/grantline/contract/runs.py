"""Events on the RUNS stream (``runs.<event>.<tenant>``) and the requirement shapes they carry."""

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from grantline.contract.envelope import Message, TenantScopedEvent

Trigger = Literal["manual", "api", "schedule"]


class RequirementIn(BaseModel):
    """A requirement as a runner writes it; the satisfaction service normalizes and validates it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["specific", "category"]
    id: str = Field(min_length=1, max_length=128)
    is_required: bool = True
    label: str | None = None
    scopes: list[str] = []


# The short form "github" means {"type": "specific", "id": "github", "is_required": true}.
RequirementSpec = str | RequirementIn


class SkillRequirements(Message):
    id: str
    requirements: list[RequirementSpec] = []
    # A skill the app may do without: its requirements are reported but never hold the app (the app's
    # satisfaction merges the app's own requirements with every *required* skill's).
    required: bool = True


class StageRequirements(Message):
    id: str
    requirements: list[RequirementSpec] = []


class RequirementStatus(Message):
    """One entry of a satisfaction report (DESIGN section 1)."""

    type: Literal["specific", "category"]
    id: str
    is_required: bool
    category_name: str | None
    is_satisfied: bool
    satisfied_by: list[str]
    available: list[str]
    missing_scopes: list[str]


class RunRequested(TenantScopedEvent):
    SUBJECT: ClassVar[str] = "runs.requested"
    type: Literal["runs.requested"] = "runs.requested"
    run_id: str = Field(min_length=1, max_length=200)
    user_id: str = Field(min_length=1, max_length=200)
    app_id: str = Field(min_length=1, max_length=200)
    requirements: list[RequirementSpec] = []
    skills: list[SkillRequirements] = []
    stages: list[StageRequirements] = []
    trigger: Trigger = "api"
    is_test: bool = False


class RunAdmitted(TenantScopedEvent):
    SUBJECT: ClassVar[str] = "runs.admitted"
    type: Literal["runs.admitted"] = "runs.admitted"
    run_id: str
    report: list[RequirementStatus]
    trigger: Trigger = "api"
    # True when the run had been held and a later grant satisfied it (the just-in-time path).
    resumed: bool = False
    # The run grant (a signed JWT, see run_grants.py) the run's tool calls present to the vault. Not a
    # provider token, so it may travel on the bus; it is kept out of reprs so it stays out of logs.
    grant: str = Field(default="", repr=False, max_length=16_384)


class ConnectLink(Message):
    """Where the user connects what one missing requirement needs (a short-lived, single-use link)."""

    requirement_type: Literal["specific", "category"]
    requirement_id: str
    # The providers the link's connect session may connect: those that satisfy the requirement.
    providers: list[str]
    # A connect-session link (its token is single-use and bound to the browser that confirms it).
    url: str = Field(repr=False)
    expires_at: datetime


class RunHeld(TenantScopedEvent):
    SUBJECT: ClassVar[str] = "runs.held"
    type: Literal["runs.held"] = "runs.held"
    run_id: str
    report: list[RequirementStatus]
    missing: list[RequirementStatus]
    message: str
    trigger: Trigger = "api"
    # One per missing requirement the gateway could mint a link for (empty when it did not answer;
    # the runner can then ask with ``RunnerClient.connect_link``).
    connect_links: list[ConnectLink] = []


class RunFinished(TenantScopedEvent):
    SUBJECT: ClassVar[str] = "runs.finished"
    type: Literal["runs.finished"] = "runs.finished"
    run_id: str
    # True when the runner gave the run up (a held run the user did not connect for): it is never
    # admitted later.
    cancelled: bool = False


class RunConnectionRevoked(TenantScopedEvent):
    SUBJECT: ClassVar[str] = "runs.connection_revoked"
    type: Literal["runs.connection_revoked"] = "runs.connection_revoked"
    run_id: str
    connection_id: str
    provider: str
    reason: str
