"""Request/reply messages served by the satisfaction service."""

from datetime import datetime

from pydantic import Field, SecretStr

from grantline.contract.envelope import TENANT_ID_PATTERN, Message
from grantline.contract.runs import (
    RequirementSpec,
    RequirementStatus,
    SkillRequirements,
    StageRequirements,
)

# Tenant-scoped: requests go to ``satisfaction.check.<tenant>`` (``envelope.tenant_scoped``).
SUBJECT_CHECK = "satisfaction.check"


# Tenant-scoped: ``satisfaction.renew_grant.<tenant>``. A run that outlives its grant's lifetime asks
# for a fresh one while the old one is still valid; refused once the run has finished.
SUBJECT_RENEW_GRANT = "satisfaction.renew_grant"


class RenewGrantRequest(Message):
    """The run's current (still valid) grant: it says which run, and proves the caller holds it."""

    grant: SecretStr = Field(min_length=1, max_length=16_384)


class RenewGrantReply(Message):
    """A new grant for the same run, user, app, providers and scopes, with a new expiry."""

    grant: str = Field(repr=False)
    expires_at: datetime


class SatisfactionCheckRequest(Message):
    tenant_id: str = Field(min_length=1, max_length=128, pattern=TENANT_ID_PATTERN)
    user_id: str
    requirements: list[RequirementSpec] = []
    skills: list[SkillRequirements] = []
    stages: list[StageRequirements] = []
    # Check one stage: the app's own requirements, that stage's and the skills'; other stages' are left
    # out. None: every stage (what a run needs before it starts).
    stage: str | None = Field(default=None, min_length=1, max_length=200)


class SatisfactionReport(Message):
    requirements: list[RequirementStatus]
    is_satisfied: bool
    missing: list[RequirementStatus]
    message: str | None = None
