"""Requirement shapes, validation errors and the (type, id) merge (DESIGN section 1)."""

import pytest
from pydantic import ValidationError

from grantline.satisfaction.domain.requirements import (
    Requirement,
    RequirementError,
    merge_requirements,
    normalize_requirement,
    normalize_requirements,
)


def test_short_form_is_a_required_specific_requirement() -> None:
    assert normalize_requirement("github") == Requirement(type="specific", id="github", is_required=True)


def test_long_forms_from_the_documented_example() -> None:
    raw = [
        {"type": "specific", "id": "github", "is_required": True},
        {"type": "category", "id": "email", "is_required": True, "label": "Any inbox we can send from"},
    ]
    github, email = normalize_requirements(raw)
    assert github == Requirement(type="specific", id="github")
    assert email.type == "category"
    assert email.label == "Any inbox we can send from"
    assert email.scopes == ()


def test_defaults_required_and_no_scopes() -> None:
    requirement = normalize_requirement({"type": "category", "id": "crm"})
    assert requirement.is_required is True
    assert requirement.label is None
    assert requirement.scopes == ()


def test_requirement_is_frozen() -> None:
    requirement = normalize_requirement("github")
    with pytest.raises(ValidationError):
        requirement.is_required = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (42, "expected a string or an object"),
        ("", "id"),
        ({"type": "vendor", "id": "github"}, "type"),
        ({"type": "specific"}, "id"),
        ({"type": "specific", "id": "github", "is_required": "yes"}, "is_required"),
        ({"type": "specific", "id": "gmail", "scope": ["gmail.send"]}, "scope"),
        ({"type": "specific", "id": "gmail", "scopes": "gmail.send"}, "scopes"),
    ],
)
def test_invalid_entries_name_their_path(raw: object, fragment: str) -> None:
    with pytest.raises(RequirementError) as caught:
        merge_requirements(app=["github"], skills=[[], ["slack", raw]])
    assert caught.value.path == ("skills", 1, 1)
    assert fragment in str(caught.value)
    assert "skills.1.1" in str(caught.value)


def test_a_bare_string_is_not_a_list_of_requirements() -> None:
    with pytest.raises(RequirementError) as caught:
        merge_requirements(app="github")
    assert caught.value.path == ("app",)


def test_stage_errors_name_the_stage() -> None:
    with pytest.raises(RequirementError) as caught:
        merge_requirements(app=[], stages=[["github"], [None]])
    assert caught.value.path == ("stages", 1, 0)


def test_skills_are_merged_after_app_and_stages_in_first_seen_order() -> None:
    merged = merge_requirements(
        app=["github", {"type": "category", "id": "email"}],
        stages=[["notion"], ["github"]],
        skills=[["slack"], [{"type": "category", "id": "email"}, "hubspot"]],
    )
    assert [(r.type, r.id) for r in merged] == [
        ("specific", "github"),
        ("category", "email"),
        ("specific", "notion"),
        ("specific", "slack"),
        ("specific", "hubspot"),
    ]


def test_dedupe_is_by_type_and_id() -> None:
    # The same id under two types is two different requirements.
    merged = merge_requirements(app=["email", {"type": "category", "id": "email"}])
    assert [(r.type, r.id) for r in merged] == [("specific", "email"), ("category", "email")]


def test_collision_is_required_if_any_unites_scopes_and_keeps_the_first_label() -> None:
    merged = merge_requirements(
        app=[{"type": "specific", "id": "gmail", "is_required": False, "scopes": ["gmail.readonly"]}],
        stages=[[{"type": "specific", "id": "gmail", "is_required": False, "label": "  "}]],
        skills=[
            [{"type": "specific", "id": "gmail", "label": "Your Gmail", "scopes": ["gmail.send"]}],
            [
                {
                    "type": "specific",
                    "id": "gmail",
                    "is_required": False,
                    "label": "Other label",
                    "scopes": ["gmail.send", "gmail.readonly", "gmail.compose"],
                }
            ],
        ],
    )
    assert merged == [
        Requirement(
            type="specific",
            id="gmail",
            is_required=True,
            label="Your Gmail",
            scopes=("gmail.readonly", "gmail.send", "gmail.compose"),
        )
    ]


def test_all_optional_stays_optional() -> None:
    merged = merge_requirements(
        app=[{"type": "category", "id": "crm", "is_required": False}],
        skills=[[{"type": "category", "id": "crm", "is_required": False}]],
    )
    assert merged[0].is_required is False


def test_requirement_objects_pass_through() -> None:
    requirement = Requirement(type="category", id="code", is_required=False)
    assert merge_requirements(app=[requirement]) == [requirement]


def test_empty_inputs_give_no_requirements() -> None:
    assert merge_requirements([], [], []) == []
