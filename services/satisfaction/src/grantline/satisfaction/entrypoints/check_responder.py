"""``satisfaction.check``: a report from the mirror, never touching the vault."""

from __future__ import annotations

from pydantic import BaseModel

from grantline.common.contract.errors import ErrorCode, ErrorReply
from grantline.common.contract.satisfaction import SUBJECT_CHECK, SatisfactionCheckRequest
from grantline.common.nats.request_reply import serve_requests
from grantline.common.runtime import ServiceRuntime
from grantline.satisfaction.domain.requirements import RequirementError
from grantline.satisfaction.service.catalogue_cache import CatalogueCache
from grantline.satisfaction.service.reports import contract_report, report_for_user, requirements_of
from grantline.satisfaction.settings import SatisfactionSettings


def register_check_responder(
    runtime: ServiceRuntime, settings: SatisfactionSettings, catalogue: CatalogueCache
) -> None:
    """Serve ``satisfaction.check`` in the service's queue group."""

    async def check(request: SatisfactionCheckRequest) -> BaseModel:
        try:
            requirements = requirements_of(request.requirements, request.stages, request.skills)
        except RequirementError as error:
            return ErrorReply.of(ErrorCode.INVALID_REQUEST, str(error))
        if not request.tenant_id or not request.user_id:
            return ErrorReply.of(ErrorCode.INVALID_REQUEST, "tenant_id and user_id must not be empty")
        async with runtime.sessions() as session:
            report = await report_for_user(
                session, catalogue.view, request.tenant_id, request.user_id, requirements
            )
        return contract_report(report)

    serve_requests(
        runtime.broker,
        service=runtime.name,
        subject=SUBJECT_CHECK,
        request_model=SatisfactionCheckRequest,
        handler=check,
        max_workers=settings.check_workers,
    )
