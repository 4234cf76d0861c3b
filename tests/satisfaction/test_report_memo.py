"""Memoized reports are the reports ``build_report`` computes, whatever the inputs (no I/O)."""

import itertools

import pytest
from test_report import CATALOGUE

from grantline.contract.satisfaction import SatisfactionReport as ContractReport
from grantline.satisfaction.domain.catalogue import Definition, StaticCatalogue, TenantProvider, tenant_view
from grantline.satisfaction.domain.report import ConnectedGrant, HeldConnection, build_report, usable_scopes
from grantline.satisfaction.domain.requirements import merge_requirements
from grantline.satisfaction.service.report_memo import ReportMemo
from grantline.satisfaction.service.reports import contract_report

REQUIREMENT_SETS: list[list[object]] = [
    ["github"],
    ["gmail", {"type": "category", "id": "email"}],
    [{"type": "specific", "id": "gmail", "scopes": ["gmail.send"]}, "slack"],
    [{"type": "category", "id": "email", "scopes": ["a", "b"]}, {"type": "category", "id": "crm"}],
    [{"type": "specific", "id": "unknown_app"}, {"type": "specific", "id": "hubspot", "is_required": False}],
    [],
]

GRANT_SETS: list[list[ConnectedGrant]] = [
    [],
    [ConnectedGrant("github", frozenset(), False, False)],
    [ConnectedGrant("google", frozenset({"gmail.readonly"}), False, False)],
    [
        ConnectedGrant("google", frozenset({"gmail.send", "a"}), False, False),
        ConnectedGrant("google", frozenset({"a", "b"}), False, False),
        ConnectedGrant("slack", frozenset(), False, False),
    ],
    # The workspace's Salesforce is shared, its Slack is not.
    [
        ConnectedGrant("salesforce", frozenset(), True, True),
        ConnectedGrant("slack", frozenset(), True, False),
        ConnectedGrant("microsoft", frozenset({"a"}), False, False),
    ],
    # The workspace's Salesforce is forced on everyone (the user's own does not count); its forced
    # HubSpot is disconnected, so nobody's HubSpot counts.
    [
        ConnectedGrant("salesforce", frozenset({"a"}), True, False, True),
        ConnectedGrant("salesforce", frozenset({"a", "b"}), False, False),
        ConnectedGrant("hubspot", frozenset(), True, False, True, False),
        ConnectedGrant("hubspot", frozenset(), False, False),
    ],
]


def _held(grants: list[ConnectedGrant]) -> tuple[list[HeldConnection], frozenset[str], frozenset[str]]:
    held = [
        HeldConnection(
            provider=g.provider,
            connection_id=f"c{i}",
            scopes=g.scopes,
            connected=g.connected,
            owner="workspace" if g.workspace else "user",
        )
        for i, g in enumerate(grants)
    ]
    fallback = frozenset(g.provider for g in grants if g.workspace and g.shared_fallback)
    forced = frozenset(g.provider for g in grants if g.workspace and g.workspace_forced)
    return held, fallback, forced


@pytest.mark.parametrize(("requirements", "grants"), list(itertools.product(REQUIREMENT_SETS, GRANT_SETS)))
def test_memoized_report_equals_the_built_one(
    requirements: list[object], grants: list[ConnectedGrant]
) -> None:
    merged = merge_requirements(requirements)
    held, fallback, forced = _held(grants)
    expected = build_report(merged, held, CATALOGUE, fallback, forced)
    memo = ReportMemo()
    first = memo.report(CATALOGUE, merged, usable_scopes(grants))
    again = memo.report(CATALOGUE, merged, usable_scopes(list(reversed(grants))))
    assert first.report == expected
    assert again is first  # row order does not matter
    assert ContractReport.model_validate_json(first.check_reply()) == contract_report(expected)


def test_connections_the_requirements_cannot_use_share_the_entry() -> None:
    memo = ReportMemo()
    merged = merge_requirements(["github"])
    github = ConnectedGrant("github", frozenset(), False, False)
    alone = memo.report(CATALOGUE, merged, usable_scopes([github]))
    with_more = memo.report(
        CATALOGUE, merged, usable_scopes([github, ConnectedGrant("slack", frozenset(), False, False)])
    )
    assert with_more is alone
    without = memo.report(CATALOGUE, merged, usable_scopes([]))
    assert not without.report.is_satisfied and without.message == "Missing required connections: github"


def test_a_new_catalogue_copy_is_not_answered_from_the_old_one() -> None:
    memo = ReportMemo()
    merged = merge_requirements(["gitlab"])
    grants = usable_scopes([ConnectedGrant("gitlab", frozenset(), False, False)])
    assert memo.report(CATALOGUE, merged, grants).report.is_satisfied
    disabled = StaticCatalogue.of(
        CATALOGUE.categories,
        [
            d if d.id != "gitlab" else Definition("gitlab", "code", "gitlab", enabled=False)
            for d in CATALOGUE.definitions
        ],
    )
    assert not memo.report(disabled, merged, grants).report.is_satisfied


def test_a_bounded_memo_forgets_rather_than_grows() -> None:
    memo = ReportMemo(max_entries=3)
    for scope in range(10):
        grants = usable_scopes([ConnectedGrant("github", frozenset({f"s{scope}"}), False, False)])
        memo.report(CATALOGUE, merge_requirements(["github"]), grants)
    assert len(memo._memos[id(CATALOGUE)]._reports) <= 3


def test_each_catalogue_copy_has_its_own_reports_and_a_bounded_number_of_copies() -> None:
    memo = ReportMemo(max_catalogues=2)
    merged = merge_requirements(["acme"])
    grants = usable_scopes([ConnectedGrant("acme", frozenset(), False, False)])
    own = tenant_view(CATALOGUE, [TenantProvider("acme", "code")])
    assert not memo.report(CATALOGUE, merged, grants).report.is_satisfied
    assert memo.report(own, merged, grants).report.is_satisfied
    assert not memo.report(CATALOGUE, merged, grants).report.is_satisfied  # still its own answer
    for _ in range(3):
        memo.report(tenant_view(CATALOGUE, [TenantProvider("acme", "code")]), merged, grants)
    assert len(memo._memos) <= 2
