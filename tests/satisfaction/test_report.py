"""The satisfaction report against a small in-test catalogue (DESIGN section 1, the documented examples)."""

from grantline.satisfaction.domain.admission import Admit, Hold, RunRequest, decide_admission, recheck_held
from grantline.satisfaction.domain.catalogue import CatalogueView, Definition, StaticCatalogue
from grantline.satisfaction.domain.report import (
    HeldConnection,
    RequirementStatus,
    SatisfactionReport,
    build_report,
    missing_message,
)
from grantline.satisfaction.domain.requirements import merge_requirements

CATALOGUE = StaticCatalogue.of(
    {
        "email": "Email",
        "code": "Code Repository",
        "file_storage": "File Storage",
        "crm": "CRM",
        "messaging": "Messaging",
    },
    [
        Definition("gmail", "email", "google"),
        Definition("outlook", "email", "microsoft"),
        Definition("sendgrid", "email", "sendgrid"),
        Definition("smartlead", "email", "smartlead", enabled=False),
        Definition("agentmail", "email", "agentmail"),
        Definition("github", "code", "github"),
        Definition("gitlab", "code", "gitlab"),
        Definition("google_drive", "file_storage", "google"),
        Definition("slack", "messaging", "slack"),
        Definition("salesforce", "crm", "salesforce"),
        Definition("hubspot", "crm", "hubspot", enabled=False),
    ],
)

FIELDS = {
    "type",
    "id",
    "is_required",
    "category_name",
    "is_satisfied",
    "satisfied_by",
    "available",
    "missing_scopes",
}


def user(provider: str, *scopes: str, connected: bool = True, cid: str | None = None) -> HeldConnection:
    return HeldConnection(
        provider=provider,
        connection_id=cid or f"conn-{provider}",
        scopes=frozenset(scopes),
        connected=connected,
        owner="user",
    )


def workspace(provider: str, *scopes: str) -> HeldConnection:
    return HeldConnection(
        provider=provider, connection_id=f"ws-{provider}", scopes=frozenset(scopes), owner="workspace"
    )


def report_for(app: list[object], connections: list[HeldConnection], **kwargs: object) -> SatisfactionReport:
    return build_report(merge_requirements(app), connections, CATALOGUE, **kwargs)  # type: ignore[arg-type]


def only(report: SatisfactionReport) -> RequirementStatus:
    assert len(report.requirements) == 1
    return report.requirements[0]


def test_static_catalogue_is_a_catalogue_view() -> None:
    view: CatalogueView = CATALOGUE
    assert view.provider_of("gmail") == "google"
    assert view.provider_of("google") == "google"
    assert view.definitions_in("email") == ["gmail", "outlook", "sendgrid", "agentmail"]


def test_documented_category_example() -> None:
    report = report_for(
        [{"type": "category", "id": "email", "is_required": True}], [user("google", "gmail.readonly")]
    )
    assert only(report).model_dump(mode="json") == {
        "type": "category",
        "id": "email",
        "is_required": True,
        "category_name": "Email",
        "is_satisfied": True,
        "satisfied_by": ["gmail"],
        "available": ["gmail", "outlook", "sendgrid", "agentmail"],
        "missing_scopes": [],
    }
    assert report.is_satisfied is True
    assert report.missing == []


def test_entries_serialize_to_exactly_the_design_fields() -> None:
    report = report_for(["github", {"type": "category", "id": "crm", "label": "A CRM"}], [])
    dumped = report.model_dump(mode="json")
    assert set(dumped) == {"requirements", "is_satisfied", "missing"}
    for entry in dumped["requirements"] + dumped["missing"]:
        assert set(entry) == FIELDS


def test_short_form_specific_satisfied_by_its_provider() -> None:
    status = only(report_for(["github"], [user("github")]))
    assert status.is_satisfied is True
    assert status.satisfied_by == ["github"]
    assert status.available == ["github"]
    assert status.category_name == "Code Repository"


def test_specific_app_is_satisfied_through_the_owning_provider() -> None:
    status = only(report_for(["gmail"], [user("google")]))
    assert (status.is_satisfied, status.satisfied_by, status.category_name) == (True, ["gmail"], "Email")


def test_specific_provider_id_is_satisfied_by_a_connection_to_it() -> None:
    status = only(report_for(["google"], [user("google")]))
    assert status.is_satisfied is True
    assert status.satisfied_by == ["google"]
    # "google" spans categories, so it has no single category name.
    assert status.category_name is None


def test_disconnected_connections_do_not_count() -> None:
    report = report_for(["github"], [user("github", connected=False)])
    assert report.is_satisfied is False
    assert only(report).satisfied_by == []
    assert only(report).missing_scopes == []


def test_category_unsatisfied_lists_what_could_satisfy_it() -> None:
    status = only(report_for([{"type": "category", "id": "email"}], [user("github")]))
    assert status.is_satisfied is False
    assert status.satisfied_by == []
    assert status.available == ["gmail", "outlook", "sendgrid", "agentmail"]


def test_category_satisfied_by_several_definitions_in_catalogue_order() -> None:
    status = only(report_for([{"type": "category", "id": "email"}], [user("sendgrid"), user("google")]))
    assert status.satisfied_by == ["gmail", "sendgrid"]


def test_disabled_definitions_are_neither_available_nor_satisfying() -> None:
    category = only(report_for([{"type": "category", "id": "crm"}], [user("hubspot")]))
    assert category.available == ["salesforce"]
    assert category.is_satisfied is False

    specific = only(report_for(["hubspot"], [user("hubspot")]))
    assert specific.is_satisfied is False
    assert specific.available == []
    assert specific.category_name == "CRM"


def test_missing_scopes_make_a_specific_requirement_unsatisfied() -> None:
    requirement = {"type": "specific", "id": "gmail", "scopes": ["gmail.readonly", "gmail.send"]}
    report = report_for([requirement], [user("google", "gmail.readonly")])
    status = only(report)
    assert status.is_satisfied is False
    assert status.missing_scopes == ["gmail.send"]
    assert status.satisfied_by == []
    assert report.missing == [status]


def test_missing_scopes_come_from_the_closest_connection() -> None:
    requirement = {"type": "specific", "id": "gmail", "scopes": ["a", "b", "c"]}
    status = only(report_for([requirement], [user("google", "a", cid="one"), user("google", "a", "b")]))
    assert status.missing_scopes == ["c"]


def test_any_connection_with_every_scope_satisfies() -> None:
    requirement = {"type": "specific", "id": "gmail", "scopes": ["gmail.send"]}
    connections = [user("google", "gmail.readonly", cid="personal"), user("google", "gmail.send")]
    status = only(report_for([requirement], connections))
    assert status.is_satisfied is True
    assert status.missing_scopes == []


def test_no_connection_means_no_missing_scopes() -> None:
    # Nothing to re-authorize: the fix is "connect", which the empty missing_scopes signals.
    status = only(report_for([{"type": "specific", "id": "gmail", "scopes": ["gmail.send"]}], []))
    assert (status.is_satisfied, status.missing_scopes) == (False, [])


def test_category_scopes_apply_to_each_candidate() -> None:
    requirement = {"type": "category", "id": "email", "scopes": ["send"]}
    status = only(report_for([requirement], [user("google", "read"), user("sendgrid", "send")]))
    assert status.satisfied_by == ["sendgrid"]
    unsatisfied = only(report_for([requirement], [user("google", "read")]))
    assert (unsatisfied.is_satisfied, unsatisfied.missing_scopes) == (False, ["send"])


def test_workspace_connection_counts_only_with_shared_fallback() -> None:
    without = report_for(["salesforce"], [workspace("salesforce")])
    assert without.is_satisfied is False

    allowed = report_for(
        ["salesforce"], [workspace("salesforce")], fallback_providers=frozenset({"salesforce"})
    )
    assert allowed.is_satisfied is True
    assert only(allowed).satisfied_by == ["salesforce"]

    other_provider = report_for(
        ["salesforce"], [workspace("salesforce")], fallback_providers=frozenset({"github"})
    )
    assert other_provider.is_satisfied is False


def test_a_forced_workspace_connection_is_the_only_one_that_counts() -> None:
    # "All apps use the shared authorization": the user's own connection no longer counts...
    forced = frozenset({"salesforce"})
    mine = user("salesforce", "api")
    assert report_for(["salesforce"], [mine], forced_providers=forced).is_satisfied is False
    # ...the workspace's does, with its own scopes, even without fallback.
    shared = workspace("salesforce")
    status = only(
        report_for(
            [{"type": "specific", "id": "salesforce", "scopes": ["api"]}],
            [mine, shared],
            forced_providers=forced,
        )
    )
    assert (status.is_satisfied, status.missing_scopes) == (False, ["api"])
    assert report_for(["salesforce"], [mine, shared], forced_providers=forced).is_satisfied is True
    # Other providers are untouched.
    assert report_for(["github"], [user("github")], forced_providers=forced).is_satisfied is True


def test_workspace_fallback_satisfies_categories_too() -> None:
    status = only(
        report_for(
            [{"type": "category", "id": "crm"}],
            [workspace("salesforce")],
            fallback_providers=frozenset({"salesforce"}),
        )
    )
    assert status.satisfied_by == ["salesforce"]


def test_optional_requirements_never_make_the_report_unsatisfied() -> None:
    report = report_for(
        ["github", {"type": "specific", "id": "gitlab", "is_required": False}], [user("github")]
    )
    assert report.is_satisfied is True
    assert report.missing == []
    optional = report.requirements[1]
    assert (optional.is_required, optional.is_satisfied) == (False, False)


def test_unknown_ids_give_unsatisfied_entries_not_errors() -> None:
    report = report_for(["nosuchthing", {"type": "category", "id": "nosuchcategory"}], [user("nosuchthing")])
    specific, category = report.requirements
    assert specific.model_dump(mode="json") == {
        "type": "specific",
        "id": "nosuchthing",
        "is_required": True,
        "category_name": None,
        "is_satisfied": False,
        "satisfied_by": [],
        "available": [],
        "missing_scopes": [],
    }
    assert (category.category_name, category.is_satisfied, category.available) == (None, False, [])
    assert report.is_satisfied is False
    assert report.missing == [specific, category]


def test_skills_requirements_are_part_of_the_report() -> None:
    requirements = merge_requirements(["github"], [], [["slack"], ["github"]])
    report = build_report(requirements, [user("github")], CATALOGUE)
    assert [s.id for s in report.requirements] == ["github", "slack"]
    assert [s.id for s in report.missing] == ["slack"]


def test_missing_message_exact_text() -> None:
    report = report_for(
        [
            {"type": "category", "id": "email", "label": "Any inbox we can send from"},
            {"type": "category", "id": "crm"},
            "github",
            {"type": "specific", "id": "gitlab", "is_required": False},
            {"type": "specific", "id": "salesforce", "label": "Company Salesforce"},
            "nosuchthing",
        ],
        [],
    )
    assert missing_message(report) == (
        "Missing required connections: "
        "Any inbox we can send from, CRM, github, Company Salesforce, nosuchthing"
    )


def test_missing_message_names_each_thing_once_and_is_empty_when_nothing_is_missing() -> None:
    labelled = report_for(
        [
            {"type": "specific", "id": "gmail", "label": "Mail"},
            {"type": "specific", "id": "outlook", "label": "Mail"},
        ],
        [],
    )
    assert missing_message(labelled) == "Missing required connections: Mail"
    assert missing_message(report_for(["github"], [user("github")])) == ""


# Run admission decisions (domain/admission.py) are driven by the report, so they are pinned here.


def test_satisfied_runs_are_admitted_with_their_trigger() -> None:
    outcome = decide_admission(RunRequest(trigger="api"), report_for(["github"], [user("github")]))
    assert isinstance(outcome, Admit)
    assert (outcome.trigger, outcome.check_skipped, outcome.http_status) == ("api", False, 200)


def test_unsatisfied_runs_are_held_with_missing_and_message() -> None:
    report = report_for(["github", {"type": "category", "id": "email"}], [user("github")])
    outcome = decide_admission(RunRequest(trigger="api"), report)
    assert isinstance(outcome, Hold)
    assert [status.id for status in outcome.missing] == ["email"]
    assert outcome.message == "Missing required connections: Email"
    assert (outcome.http_status, outcome.resumable) == (422, True)


def test_test_runs_skip_the_check() -> None:
    outcome = decide_admission(RunRequest(trigger="manual", is_test=True), report_for(["github"], []))
    assert isinstance(outcome, Admit)
    assert outcome.check_skipped is True
    assert outcome.report.is_satisfied is False


def test_held_run_is_admitted_once_the_missing_connection_is_granted() -> None:
    held = decide_admission(RunRequest(trigger="manual"), report_for(["github", "slack"], []))
    assert isinstance(held, Hold)

    still = recheck_held(held, report_for(["github", "slack"], [user("github")]))
    assert isinstance(still, Hold)
    assert still.message == "Missing required connections: slack"

    admitted = recheck_held(still, report_for(["github", "slack"], [user("github"), user("slack")]))
    assert isinstance(admitted, Admit)
    assert admitted.trigger == "manual"


def test_scheduled_ticks_are_held_with_the_trigger_and_not_resumed() -> None:
    held = decide_admission(RunRequest(trigger="schedule"), report_for(["github"], []))
    assert isinstance(held, Hold)
    # The scheduler records last_status='error' with this message and keeps next_run_at.
    assert (held.trigger, held.resumable) == ("schedule", False)
    assert held.message == "Missing required connections: github"
    assert recheck_held(held, report_for(["github"], [user("github")])) == held


def test_a_tenants_own_provider_satisfies_its_requirements_in_that_tenants_view_only() -> None:
    from grantline.satisfaction.domain.catalogue import TenantProvider, tenant_view

    own = tenant_view(
        CATALOGUE,
        [
            TenantProvider("acme", "code"),
            TenantProvider(
                "acme_suite", "messaging", apps=(("acme_mail", "email"), ("acme_chat", "messaging"))
            ),
            TenantProvider("github", "code"),  # a catalogue id: keeps its catalogue meaning
            TenantProvider("odd", "no_such_category"),  # not a category requirements know: left out
        ],
    )
    wanted = merge_requirements(["acme", "acme_mail", {"type": "category", "id": "email"}, "odd"])
    report = build_report(wanted, [user("acme"), user("acme_suite")], own)
    by_id = {status.id: status for status in report.requirements}
    assert by_id["acme"].is_satisfied and by_id["acme_mail"].is_satisfied
    assert by_id["acme_mail"].category_name == "Email"
    assert "acme_mail" in by_id["email"].satisfied_by and "acme_mail" in by_id["email"].available
    assert not by_id["odd"].is_satisfied and by_id["odd"].available == []
    assert own.provider_of("acme_suite") == "acme_suite" and own.provider_of("github") == "github"
    # The shared catalogue (every other tenant's view) knows none of them.
    shared = build_report(wanted, [user("acme"), user("acme_suite")], CATALOGUE)
    assert [status.id for status in shared.missing] == ["acme", "acme_mail", "email", "odd"]


def test_a_provider_the_tenant_switched_off_satisfies_nothing_and_the_message_says_why() -> None:
    from grantline.satisfaction.domain.catalogue import TenantProvider, tenant_view

    off = tenant_view(CATALOGUE, [TenantProvider("acme", "code")], disabled=frozenset({"google", "acme"}))
    wanted = merge_requirements(["gmail", "acme", "github", {"type": "category", "id": "email"}])
    report = build_report(wanted, [user("google"), user("acme"), user("github")], off)
    by_id = {status.id: status for status in report.requirements}
    assert not by_id["gmail"].is_satisfied and by_id["gmail"].available == []
    assert by_id["gmail"].category_name == "Email"  # known, just switched off
    assert not by_id["acme"].is_satisfied and by_id["github"].is_satisfied
    assert "gmail" not in by_id["email"].available
    assert missing_message(report) == "Missing required connections: gmail (disabled), acme (disabled), Email"
    assert "disabled" not in str(report.model_dump())  # the public shape is unchanged
    assert build_report(wanted[:1], [user("google")], CATALOGUE).is_satisfied  # other tenants
