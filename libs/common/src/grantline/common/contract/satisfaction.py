"""Request/reply messages served by the satisfaction service."""

from pydantic import Field

from grantline.common.contract.envelope import TENANT_ID_PATTERN, Message
from grantline.common.contract.runs import (
    RequirementSpec,
    RequirementStatus,
    SkillRequirements,
    StageRequirements,
)

# Tenant-scoped: requests go to ``satisfaction.check.<tenant>`` (``envelope.tenant_scoped``).
SUBJECT_CHECK = "satisfaction.check"


class SatisfactionCheckRequest(Message):
    tenant_id: str = Field(min_length=1, max_length=128, pattern=TENANT_ID_PATTERN)
    user_id: str
    requirements: list[RequirementSpec] = []
    skills: list[SkillRequirements] = []
    stages: list[StageRequirements] = []


class SatisfactionReport(Message):
    requirements: list[RequirementStatus]
    is_satisfied: bool
    missing: list[RequirementStatus]
    message: str | None = None
