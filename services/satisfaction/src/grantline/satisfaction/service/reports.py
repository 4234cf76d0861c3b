"""Reports for one user from the mirror, and their conversion to the contract's shapes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grantline.contract import runs as contract
from grantline.contract.satisfaction import SatisfactionReport as ContractReport
from grantline.runtime.db.driver import DriverConnection
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
from grantline.satisfaction.domain.requirements import (
    Requirement,
    RequirementError,
    combine,
    normalize_requirements,
)


def _raw(spec: contract.RequirementSpec) -> Any:
    return spec if isinstance(spec, str) else spec.model_dump()


def requirements_of(
    requirements: Sequence[contract.RequirementSpec],
    stages: Sequence[contract.StageRequirements] = (),
    skills: Sequence[contract.SkillRequirements] = (),
    *,
    stage: str | None = None,
) -> list[Requirement]:
    """Merge a message's app, stage and skill requirements; errors name the path as the message has it.

    With ``stage``, only that stage's requirements are merged (an unknown stage is an error). A skill
    that is not ``required`` brings its requirements as optional ones: reported, never holding.
    """
    collected = normalize_requirements([_raw(r) for r in requirements], ("requirements",))
    if stage is not None and all(s.id != stage for s in stages):
        raise RequirementError(("stage",), f"no stage {stage!r} among the stages given")
    for index, found in enumerate(stages):
        if stage is None or found.id == stage:
            collected += normalize_requirements(
                [_raw(r) for r in found.requirements], ("stages", index, "requirements")
            )
    for index, skill in enumerate(skills):
        parsed = normalize_requirements(
            [_raw(r) for r in skill.requirements], ("skills", index, "requirements")
        )
        collected += (
            parsed if skill.required else [r.model_copy(update={"is_required": False}) for r in parsed]
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
    forced = frozenset(r.row.provider for r in records if r.row.owner == "workspace" and r.workspace_forced)
    return build_report(requirements, held_connections(r.row for r in records), catalogue, fallback, forced)


async def report_for_user(
    conn: DriverConnection,
    catalogue: CatalogueView,
    tenant_id: str,
    user_id: str,
    requirements: Sequence[Requirement],
) -> SatisfactionReport:
    """Read the user's mirror rows and compute the report."""
    records = await records_for_user(conn, tenant_id, user_id) if requirements else []
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
