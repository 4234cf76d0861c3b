"""Reports memoized by their exact inputs, with their contract shapes built once.

A report is a pure function of the catalogue copy, the merged requirements and the scope sets of the
user's usable connections to the providers those requirements can use. Runners request the same apps
over and over and most users hold the same few connections, so the hot paths (``runs.requested`` and
``satisfaction.check``) mostly find the report, its contract entries and the encoded check reply here
instead of building several pydantic models per requirement each time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from grantline.contract import runs as contract
from grantline.contract.registry import encode_message
from grantline.contract.satisfaction import SatisfactionReport as ContractReport
from grantline.satisfaction.domain.catalogue import CatalogueView
from grantline.satisfaction.domain.report import (
    SatisfactionReport,
    UsableScopes,
    build_report_from_usable,
    missing_message,
)
from grantline.satisfaction.domain.requirements import Requirement
from grantline.satisfaction.service.reports import contract_statuses

RequirementsKey = tuple[Requirement, ...]
UsableKey = tuple[tuple[str, tuple[frozenset[str], ...]], ...]


@dataclass(frozen=True)
class MemoReport:
    """A report with its contract entries and ``satisfaction.check`` reply (share, never mutate)."""

    report: SatisfactionReport
    statuses: list[contract.RequirementStatus]
    missing: list[contract.RequirementStatus]
    message: str
    _reply: list[bytes] = field(default_factory=list, repr=False, compare=False)

    def check_reply(self) -> bytes:
        """The encoded ``satisfaction.check`` reply (built on first use)."""
        if not self._reply:
            self._reply.append(
                encode_message(
                    ContractReport(
                        requirements=self.statuses,
                        is_satisfied=self.report.is_satisfied,
                        missing=self.missing,
                        message=self.message or None,
                    )
                )
            )
        return self._reply[0]


class ReportMemo:
    """A bounded memo of reports per catalogue copy (the shared one, or a tenant's with its own
    providers); a replaced copy's reports are never served again."""

    def __init__(self, max_entries: int = 4096, max_catalogues: int = 64) -> None:
        self._max_entries = max_entries
        self._max_catalogues = max_catalogues
        self._memos: dict[int, _CatalogueMemo] = {}
        self._stored: dict[RequirementsKey, list[dict[str, object]]] = {}

    def report(
        self, catalogue: CatalogueView, requirements: Sequence[Requirement], usable: UsableScopes
    ) -> MemoReport:
        """The report for ``requirements`` against ``usable`` (see ``usable_scopes``)."""
        memo = self._memos.get(id(catalogue))
        if memo is None or memo.catalogue is not catalogue:
            if len(self._memos) >= self._max_catalogues:
                self._memos.clear()
            memo = self._memos[id(catalogue)] = _CatalogueMemo(catalogue)
        return memo.report(requirements, usable, self._max_entries)

    def stored_requirements(self, requirements: Sequence[Requirement]) -> list[dict[str, object]]:
        """The requirements as the ``runs`` row stores them (their long form; share, never mutate)."""
        wanted = tuple(requirements)
        stored = self._stored.get(wanted)
        if stored is None:
            if len(self._stored) >= self._max_entries:
                self._stored.clear()
            stored = self._stored[wanted] = [r.model_dump(mode="json") for r in wanted]
        return stored


class _CatalogueMemo:
    """The reports of one catalogue copy (it holds the copy, so its id is not reused meanwhile)."""

    def __init__(self, catalogue: CatalogueView) -> None:
        self.catalogue = catalogue
        self._reports: dict[tuple[RequirementsKey, UsableKey], MemoReport] = {}
        self._providers: dict[RequirementsKey, frozenset[str]] = {}

    def report(
        self, requirements: Sequence[Requirement], usable: UsableScopes, max_entries: int
    ) -> MemoReport:
        wanted = tuple(requirements)
        providers = self._providers.get(wanted)
        if providers is None:
            if len(self._providers) >= max_entries:
                self._providers.clear()
            providers = self._providers[wanted] = _providers_used_by(self.catalogue, wanted)
        # Only the providers the requirements can use matter: other connections do not change the report.
        key = (wanted, tuple((p, tuple(usable[p])) for p in sorted(providers) if p in usable))
        memo = self._reports.get(key)
        if memo is None:
            memo = _memo_report(build_report_from_usable(wanted, usable, self.catalogue))
            if len(self._reports) >= max_entries:
                self._reports.clear()  # simple and bounded; a cold start costs one build per key
            self._reports[key] = memo
        return memo


def _providers_used_by(catalogue: CatalogueView, requirements: RequirementsKey) -> frozenset[str]:
    providers: set[str | None] = set()
    for requirement in requirements:
        if requirement.type == "specific":
            providers.add(catalogue.provider_of(requirement.id))
        else:
            providers.update(catalogue.provider_of(d) for d in catalogue.definitions_in(requirement.id))
    return frozenset(p for p in providers if p is not None)


def _memo_report(report: SatisfactionReport) -> MemoReport:
    return MemoReport(
        report=report,
        statuses=contract_statuses(report.requirements),
        missing=contract_statuses(report.missing),
        message=missing_message(report),
    )
