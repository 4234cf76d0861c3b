"""`/v1/satisfaction/check`: has the user connected everything an app needs?"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from grantline.auth_gateway.entrypoints.http.context import CallerDep, GatewayDep
from grantline.auth_gateway.entrypoints.http.problem_details import PROBLEM_RESPONSES, problem_response
from grantline.auth_gateway.service.satisfaction_check import check_satisfaction
from grantline.auth_gateway.service.views import UserId
from grantline.contract import satisfaction
from grantline.contract.runs import RequirementSpec, SkillRequirements, StageRequirements

router = APIRouter(prefix="/v1/satisfaction", tags=["satisfaction"])


class SatisfactionCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UserId
    requirements: list[RequirementSpec] = Field(default=[], max_length=200)
    skills: list[SkillRequirements] = Field(default=[], max_length=100)
    stages: list[StageRequirements] = Field(default=[], max_length=100)
    stage: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="check one stage: the app's, this stage's and the skills' requirements",
    )
    is_test: bool = False


@router.post(
    "/check",
    response_model=satisfaction.SatisfactionReport,
    summary="Check a user's connections against requirements",
    responses={**PROBLEM_RESPONSES, 422: PROBLEM_RESPONSES[422] | {"description": "missing requirements"}},
)
async def check(
    gw: GatewayDep, caller: CallerDep, body: SatisfactionCheckIn
) -> satisfaction.SatisfactionReport | Response:
    """200 with the report when satisfied (or `is_test`); 422 with what is missing otherwise."""
    report = await check_satisfaction(
        gw,
        caller,
        user_id=body.user_id,
        requirements=body.requirements,
        skills=body.skills,
        stages=body.stages,
        stage=body.stage,
    )
    if report.is_satisfied or body.is_test:
        return report
    return problem_response(
        422,
        "requirements_not_met",
        report.message or "missing required connections",
        extra={
            "missing": [m.model_dump(mode="json") for m in report.missing],
            "report": report.model_dump(mode="json"),
        },
    )
