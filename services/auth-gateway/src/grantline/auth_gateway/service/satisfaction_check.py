"""Has a user connected everything an app needs? Satisfaction answers; the gateway asks for a caller."""

from __future__ import annotations

from grantline.auth_gateway.service.context import Gateway
from grantline.auth_gateway.service.principal import Principal
from grantline.auth_gateway.service.problems import Problem
from grantline.contract import satisfaction
from grantline.contract.envelope import tenant_scoped
from grantline.contract.runs import RequirementSpec, SkillRequirements, StageRequirements


async def check_satisfaction(
    gw: Gateway,
    caller: Principal,
    *,
    user_id: str,
    requirements: list[RequirementSpec],
    skills: list[SkillRequirements],
    stages: list[StageRequirements],
    stage: str | None = None,
) -> satisfaction.SatisfactionReport:
    """Satisfaction's report for one user of the caller's tenant (satisfied or not)."""
    if caller.kind == "connect_session" and user_id != caller.user_id:
        raise Problem(403, "forbidden", "a connect session acts for its own user only")
    return await gw.bus.ask(
        tenant_scoped(satisfaction.SUBJECT_CHECK, caller.tenant_id),
        satisfaction.SatisfactionCheckRequest(
            tenant_id=caller.tenant_id,
            user_id=user_id,
            requirements=requirements,
            skills=skills,
            stages=stages,
            stage=stage,
        ),
        satisfaction.SatisfactionReport,
    )
