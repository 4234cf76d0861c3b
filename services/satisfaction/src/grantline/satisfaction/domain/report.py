"""The satisfaction report: for each merged requirement, has the user connected something that satisfies it?

Rules (DESIGN sections 1-3):

- A connection counts when it is ``connected`` and either the user's own or, for a provider in the
  tenant's ``fallback_providers``, the workspace's. For a provider in ``forced_providers`` (the tenant
  forced the shared connection: "all apps use the shared authorization"), only the workspace's counts.
- A connection's scopes are those of its grant less those a server said it lacks (step-up marks).
- ``specific``: satisfied when the id is known and enabled and a counting connection to its owning
  provider (``gmail`` -> ``google``) holds every requested scope. ``satisfied_by == [id]`` then;
  ``available == [id]`` when enabled.
- ``category``: ``available`` is the enabled definitions of the category; ``satisfied_by`` those of them
  whose provider the user has connected (with the requested scopes, if any).
- ``missing_scopes`` is non-empty only when a counting connection exists but lacks scopes: it lists the
  requested scopes the closest connection lacks. So "not satisfied, no missing scopes" means "connect",
  and "not satisfied, missing scopes" means "re-authorize to add scopes".
- An unknown id (not in the tenant's catalogue) is not an error: it yields an unsatisfied entry with
  ``category_name`` None and empty ``available``, so one stale id cannot break a whole check. A disabled
  definition (by the operator, or switched off by the tenant) is treated the same way except that its
  ``category_name`` is still shown and the "missing" message says it is disabled.
- Optional requirements are reported but never make the report unsatisfied.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from grantline.satisfaction.domain.catalogue import CatalogueView
from grantline.satisfaction.domain.requirements import Requirement, RequirementType

__all__ = [
    "MISSING_PREFIX",
    "CatalogueView",
    "ConnectedGrant",
    "HeldConnection",
    "RequirementStatus",
    "SatisfactionReport",
    "UsableScopes",
    "build_report",
    "build_report_from_usable",
    "missing_message",
]

MISSING_PREFIX = "Missing required connections: "


class HeldConnection(BaseModel):
    """A connection the user (or the workspace) currently has, as the mirror knows it."""

    model_config = ConfigDict(frozen=True)

    provider: str
    connection_id: str
    scopes: frozenset[str] = frozenset()
    connected: bool = True
    owner: Literal["user", "workspace"] = "user"


class RequirementStatus(BaseModel):
    """One report entry; serializes to exactly the DESIGN fields (``label`` is kept for messages only)."""

    model_config = ConfigDict(frozen=True)

    type: RequirementType
    id: str
    is_required: bool
    category_name: str | None
    is_satisfied: bool
    satisfied_by: list[str]
    available: list[str]
    missing_scopes: list[str]
    # Excluded from dumps: the public shape is fixed, but the "missing" message wants the label.
    label: str | None = Field(default=None, exclude=True)
    # Excluded too: the requirement names a known provider that is switched off (said in the message).
    disabled: bool = Field(default=False, exclude=True)

    @property
    def display_name(self) -> str:
        """The human name: the label, else the category name for categories, else the id."""
        if self.label:
            return self.label
        if self.type == "category" and self.category_name:
            return self.category_name
        return self.id


class SatisfactionReport(BaseModel):
    """All entries, whether every required one is satisfied, and the required-but-unsatisfied ones."""

    model_config = ConfigDict(frozen=True)

    requirements: list[RequirementStatus]
    is_satisfied: bool
    missing: list[RequirementStatus]

    @classmethod
    def from_statuses(cls, statuses: Iterable[RequirementStatus]) -> SatisfactionReport:
        """Derive ``is_satisfied`` and ``missing`` from the entries."""
        entries = list(statuses)
        missing = [s for s in entries if s.is_required and not s.is_satisfied]
        return cls(requirements=entries, is_satisfied=not missing, missing=missing)


# Per provider, the scope sets of the connections that count for the user (own, or shared workspace).
UsableScopes = dict[str, list[frozenset[str]]]


class ConnectedGrant(NamedTuple):
    """A mirror row as the hot paths read it (no validation: it comes from our own table).

    Connected rows, plus the workspace rows that force the shared connection even when not connected
    (their flag still keeps the users' own connections from counting).
    """

    provider: str
    scopes: frozenset[str]
    workspace: bool
    shared_fallback: bool
    workspace_forced: bool = False
    connected: bool = True


def usable_scopes(grants: Iterable[ConnectedGrant]) -> UsableScopes:
    """The same counting rule as ``build_report`` with the sharing taken from the workspace rows' flags."""
    grants = list(grants)
    fallback = {g.provider for g in grants if g.workspace and g.shared_fallback}
    forced = {g.provider for g in grants if g.workspace and g.workspace_forced}
    usable: UsableScopes = {}
    for grant in grants:
        if not grant.connected or not _counts(grant.provider, grant.workspace, fallback, forced):
            continue
        usable.setdefault(grant.provider, []).append(grant.scopes)
    for scope_sets in usable.values():
        # A fixed order makes "the closest connection" (and so the report) independent of row order.
        scope_sets.sort(key=sorted)
    return usable


def build_report(
    requirements: Sequence[Requirement],
    connections: Iterable[HeldConnection],
    catalogue: CatalogueView,
    fallback_providers: frozenset[str] = frozenset(),
    forced_providers: frozenset[str] = frozenset(),
) -> SatisfactionReport:
    """Compute the report for already merged requirements against the user's connections."""
    usable = _usable_scopes_by_provider(connections, fallback_providers, forced_providers)
    return build_report_from_usable(requirements, usable, catalogue)


def build_report_from_usable(
    requirements: Sequence[Requirement], usable: UsableScopes, catalogue: CatalogueView
) -> SatisfactionReport:
    """Compute the report from the usable scope sets per provider (see ``usable_scopes``)."""
    statuses = [
        _specific_status(req, usable, catalogue)
        if req.type == "specific"
        else _category_status(req, usable, catalogue)
        for req in requirements
    ]
    return SatisfactionReport.from_statuses(statuses)


def missing_message(report: SatisfactionReport) -> str:
    """``"Missing required connections: a, b"`` naming each missing requirement; "" when none is missing."""
    if not report.missing:
        return ""
    names = dict.fromkeys(
        f"{status.display_name} (disabled)" if status.disabled else status.display_name
        for status in report.missing
    )
    return MISSING_PREFIX + ", ".join(names)


def _usable_scopes_by_provider(
    connections: Iterable[HeldConnection],
    fallback_providers: frozenset[str],
    forced_providers: frozenset[str],
) -> dict[str, list[frozenset[str]]]:
    usable: dict[str, list[frozenset[str]]] = {}
    for connection in connections:
        workspace = connection.owner == "workspace"
        if connection.connected and _counts(
            connection.provider, workspace, fallback_providers, forced_providers
        ):
            usable.setdefault(connection.provider, []).append(connection.scopes)
    return usable


def _counts(provider: str, workspace: bool, fallback: Collection[str], forced: Collection[str]) -> bool:
    """Per-user is the default; a workspace grant stands in where the tenant opted in, or replaces the
    users' own where it forced the shared connection."""
    if provider in forced:
        return workspace
    return not workspace or provider in fallback


def _scope_gap(scope_sets: list[frozenset[str]], wanted: tuple[str, ...]) -> list[str] | None:
    """Scopes missing from the closest connection; None when there is no usable connection at all."""
    if not scope_sets:
        return None
    gaps = [[scope for scope in wanted if scope not in granted] for granted in scope_sets]
    return min(gaps, key=len)


def _specific_status(
    req: Requirement, usable: dict[str, list[frozenset[str]]], catalogue: CatalogueView
) -> RequirementStatus:
    provider = catalogue.provider_of(req.id)
    category_id = catalogue.category_of(req.id)
    category_name = catalogue.category_name(category_id) if category_id else None
    enabled = provider is not None and catalogue.is_enabled(req.id)
    gap = _scope_gap(usable.get(provider, []), req.scopes) if enabled and provider else None
    satisfied = gap == []
    return RequirementStatus(
        type=req.type,
        id=req.id,
        is_required=req.is_required,
        category_name=category_name if provider is not None else None,
        is_satisfied=satisfied,
        satisfied_by=[req.id] if satisfied else [],
        available=[req.id] if enabled else [],
        missing_scopes=gap or [],
        label=req.label,
        disabled=provider is not None and not enabled,
    )


def _category_status(
    req: Requirement, usable: dict[str, list[frozenset[str]]], catalogue: CatalogueView
) -> RequirementStatus:
    available = catalogue.definitions_in(req.id)
    satisfied_by: list[str] = []
    gaps: list[list[str]] = []
    for definition_id in available:
        provider = catalogue.provider_of(definition_id)
        gap = _scope_gap(usable.get(provider, []), req.scopes) if provider else None
        if gap == []:
            satisfied_by.append(definition_id)
        elif gap is not None:
            gaps.append(gap)
    satisfied = bool(satisfied_by)
    return RequirementStatus(
        type=req.type,
        id=req.id,
        is_required=req.is_required,
        category_name=catalogue.category_name(req.id),
        is_satisfied=satisfied,
        satisfied_by=satisfied_by,
        available=available,
        missing_scopes=[] if satisfied or not gaps else min(gaps, key=len),
        label=req.label,
    )
