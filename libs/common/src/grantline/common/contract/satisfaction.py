"""Request/reply messages served by the satisfaction service."""

from grantline.common.contract.envelope import Message
from grantline.common.contract.runs import (
    RequirementSpec,
    RequirementStatus,
    SkillRequirements,
    StageRequirements,
)

SUBJECT_CHECK = "satisfaction.check"


class SatisfactionCheckRequest(Message):
    tenant_id: str
    user_id: str
    requirements: list[RequirementSpec] = []
    skills: list[SkillRequirements] = []
    stages: list[StageRequirements] = []


class SatisfactionReport(Message):
    requirements: list[RequirementStatus]
    is_satisfied: bool
    missing: list[RequirementStatus]
    message: str | None = None
