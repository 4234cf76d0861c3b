"""Reports for one user from the mirror, and their conversion to the contract's shapes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from grantline.common.contract import runs as contract
from grantline.common.contract.satisfaction import SatisfactionReport as ContractReport
from grantline.satisfaction.adapters.mirror_repository import records_for_user
from grantline.satisfaction.domain.catalogue import CatalogueView
from grantline.satisfaction.domain.mirror_records import MirrorRecord
from grantline.satisfaction.domain.mirror_rules import held_connections
from grantline.satisfaction.domain.report import (
    RequirementStatus,
    SatisfactionReport,
    build_report,
    missing_message,
)
from grantline.satisfaction.domain.requirements import Requirement, combine, normalize_requirements


def _raw(spec: contract.RequirementSpec) -> Any:
    return spec if isinstance(spec, str) else spec.model_dump()


def requirements_of(
    requirements: Sequence[contract.RequirementSpec],
    stages: Sequence[contract.StageRequirements] = (),
    skills: Sequence[contract.SkillRequirements] = (),
) -> list[Requirement]:
    """Merge a message's app, stage and skill requirements; errors name the path as the message has it."""
    collected = normalize_requirements([_raw(r) for r in requirements], ("requirements",))
    for index, stage in enumerate(stages):
        collected += normalize_requirements(
            [_raw(r) for r in stage.requirements], ("stages", index, "requirements")
        )
    for index, skill in enumerate(skills):
        collected += normalize_requirements(
            [_raw(r) for r in skill.requirements], ("skills", index, "requirements")
        )
    return combine(collected)


def report_from_records(
    requirements: Sequence[Requirement], records: Sequence[MirrorRecord], catalogue: CatalogueView
) -> SatisfactionReport:
    """The report for requirements against one user's records (own ones and the workspace's)."""
    fallback = frozenset(
        r.row.provider
        for r in records
        if r.row.owner == "workspace" and r.row.connected and r.shared_fallback
    )
    return build_report(requirements, held_connections(r.row for r in records), catalogue, fallback)


async def report_for_user(
    session: AsyncSession,
    catalogue: CatalogueView,
    tenant_id: str,
    user_id: str,
    requirements: Sequence[Requirement],
) -> SatisfactionReport:
    """Read the user's mirror rows and compute the report."""
    records = await records_for_user(session, tenant_id, user_id) if requirements else []
    return report_from_records(requirements, records, catalogue)


def contract_statuses(statuses: Sequence[RequirementStatus]) -> list[contract.RequirementStatus]:
    """Domain entries as the contract's (the same public fields; the label stays behind)."""
    return [contract.RequirementStatus.model_validate(status.model_dump()) for status in statuses]


def contract_report(report: SatisfactionReport) -> ContractReport:
    """The ``satisfaction.check`` reply for a report."""
    return ContractReport(
        requirements=contract_statuses(report.requirements),
        is_satisfied=report.is_satisfied,
        missing=contract_statuses(report.missing),
        message=missing_message(report) or None,
    )
