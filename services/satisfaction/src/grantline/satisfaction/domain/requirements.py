"""Connect requirements: parsing the accepted shapes and merging app, stage and skill requirements.

A requirement is ``{"type": "specific"|"category", "id": ..., "is_required": bool, "label"?: str,
"scopes"?: [...]}``; the short form ``"github"`` means ``{"type": "specific", "id": "github",
"is_required": true}`` (DESIGN section 1). Unknown keys are rejected so that a typo such as ``"scope"``
fails loudly instead of silently dropping a scope the app needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError, field_validator

RequirementType = Literal["specific", "category"]
PathPart = str | int


class RequirementError(ValueError):
    """A requirement that cannot be read; ``path`` locates it in the request (e.g. ``("skills", 1, 0)``)."""

    def __init__(self, path: tuple[PathPart, ...], message: str) -> None:
        self.path = path
        self.message = message
        where = ".".join(str(part) for part in path) or "<requirement>"
        super().__init__(f"invalid requirement at {where}: {message}")


class Requirement(BaseModel):
    """One connect requirement in its long form."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: RequirementType
    id: StrictStr = Field(min_length=1)
    is_required: StrictBool = True
    label: StrictStr | None = None
    scopes: tuple[StrictStr, ...] = ()

    @field_validator("id")
    @classmethod
    def _id_not_blank(cls, value: str) -> str:
        # Catalogue ids never carry whitespace; " github" is a typo, not a different provider.
        stripped = value.strip()
        if not stripped:
            raise ValueError("id must not be blank")
        return stripped

    @field_validator("label")
    @classmethod
    def _blank_label_is_none(cls, value: str | None) -> str | None:
        # An empty label would win the merge and then render as nothing in the "missing" message.
        if value is None or not value.strip():
            return None
        return value.strip()

    @field_validator("scopes")
    @classmethod
    def _scopes_unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = [scope.strip() for scope in value]
        if any(not scope for scope in cleaned):
            raise ValueError("scopes must not contain blank entries")
        return tuple(dict.fromkeys(cleaned))

    @property
    def key(self) -> tuple[str, str]:
        """The de-duplication key ``(type, id)``."""
        return (self.type, self.id)


def normalize_requirement(raw: Any, path: tuple[PathPart, ...] = ()) -> Requirement:
    """Read one requirement from the short form (a string), a mapping, or a ``Requirement``."""
    if isinstance(raw, Requirement):
        return raw
    if isinstance(raw, str):
        raw = {"type": "specific", "id": raw, "is_required": True}
    if not isinstance(raw, Mapping):
        raise RequirementError(path, f"expected a string or an object, got {type(raw).__name__}")
    try:
        return Requirement.model_validate(dict(raw))
    except ValidationError as exc:
        raise RequirementError(path, _describe(exc)) from None


def normalize_requirements(raw: Any, path: tuple[PathPart, ...] = ()) -> list[Requirement]:
    """Read a list of requirements; each error names the index of the bad entry."""
    # A bare string is a sequence too; accepting it would split "github" into six requirements.
    if isinstance(raw, str | bytes | Mapping) or not isinstance(raw, Sequence):
        raise RequirementError(path, f"expected a list of requirements, got {type(raw).__name__}")
    return [normalize_requirement(item, (*path, index)) for index, item in enumerate(raw)]


def merge_requirements(
    app: Sequence[Any] = (),
    stages: Sequence[Sequence[Any]] = (),
    skills: Sequence[Sequence[Any]] = (),
) -> list[Requirement]:
    """Merge app, per-stage and per-skill requirements, de-duplicated by ``(type, id)``, first-seen order."""
    collected: list[Requirement] = normalize_requirements(app, ("app",))
    collected += _normalize_groups(stages, "stages")
    collected += _normalize_groups(skills, "skills")
    return combine(collected)


def combine(requirements: Iterable[Requirement]) -> list[Requirement]:
    """De-duplicate parsed requirements by ``(type, id)``: required if any, scopes united, first label."""
    merged: dict[tuple[str, str], Requirement] = {}
    for requirement in requirements:
        seen = merged.get(requirement.key)
        merged[requirement.key] = requirement if seen is None else _merge_pair(seen, requirement)
    return list(merged.values())


def _normalize_groups(groups: Sequence[Sequence[Any]], name: str) -> list[Requirement]:
    if isinstance(groups, str | bytes | Mapping) or not isinstance(groups, Sequence):
        raise RequirementError((name,), f"expected a list of requirement lists, got {type(groups).__name__}")
    out: list[Requirement] = []
    for index, group in enumerate(groups):
        out += normalize_requirements(group, (name, index))
    return out


def _merge_pair(first: Requirement, second: Requirement) -> Requirement:
    return Requirement(
        type=first.type,
        id=first.id,
        is_required=first.is_required or second.is_required,
        label=first.label if first.label is not None else second.label,
        scopes=tuple(dict.fromkeys((*first.scopes, *second.scopes))),
    )


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(loc) for loc in error["loc"]) or "requirement"
        parts.append(f"{field}: {error['msg']}")
    return "; ".join(parts)
