"""The shipped catalogue loads, covers the reference providers, and answers lookups."""

import pytest

from grantline.providers.catalogue import (
    CatalogueError,
    UnknownProviderError,
    load_catalogue,
    parse_definition,
)

REQUIRED_PROVIDERS = [
    "google",
    "microsoft",
    "github",
    "github_mcp",
    "gitlab",
    "bitbucket",
    "slack",
    "slack_mcp",
    "discord",
    "whatsapp",
    "telegram",
    "notion",
    "linear",
    "atlassian",
    "asana",
    "asana_mcp",
    "trello",
    "clickup",
    "todoist",
    "figma",
    "canva",
    "dropbox",
    "hubspot",
    "salesforce",
    "pipedrive",
    "close",
    "apollo",
    "crustdata",
    "shopify",
    "sendgrid",
    "smartlead",
    "agentmail",
    "x",
    "linkedin",
    "facebook",
    "instagram",
    "tiktok",
    "airtable",
    "apify",
    "firecrawl",
    "supabase",
    "sentry",
    "fitbit",
    "oura",
    "spotify",
    "smartthings",
]

SANDBOX_PROVIDERS = [
    "sandbox",
    "sandbox_slack",
    "sandbox_slack_mcp",
    "sandbox_google",
    "sandbox_github",
    "sandbox_rotating",
    "sandbox_pkce",
    "sandbox_mcp_scopeless",
    "sandbox_api_key",
]


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


def test_every_reference_provider_is_present(catalogue):
    missing = [provider for provider in REQUIRED_PROVIDERS if provider not in catalogue]
    assert missing == []


def test_sandbox_entries_load_only_with_a_sandbox_url(catalogue):
    assert not any(provider in catalogue for provider in SANDBOX_PROVIDERS)
    with_sandbox = load_catalogue(sandbox_url="http://127.0.0.1:8765/")
    for provider in SANDBOX_PROVIDERS:
        definition = with_sandbox.get(provider)
        if definition.oauth is not None:
            assert definition.oauth.token_url.startswith("http://127.0.0.1:8765/p/")
            assert "{sandbox_url}" not in definition.oauth.authorize_url


@pytest.mark.parametrize(
    ("app", "provider"),
    [
        ("gmail", "google"),
        ("google_calendar", "google"),
        ("google_drive", "google"),
        ("google_sheets", "google"),
        ("google_docs", "google"),
        ("google_contacts", "google"),
        ("google_tasks", "google"),
        ("youtube", "google"),
        ("outlook_mail", "microsoft"),
        ("outlook_calendar", "microsoft"),
        ("onedrive", "microsoft"),
        ("teams", "microsoft"),
        ("microsoft_todo", "microsoft"),
        ("jira", "atlassian"),
        ("confluence", "atlassian"),
        ("twitter", "x"),
        ("github", "github"),
    ],
)
def test_apps_map_to_their_provider(catalogue, app, provider):
    assert catalogue.provider_for_app(app).id == provider


def test_unknown_ids_raise(catalogue):
    with pytest.raises(UnknownProviderError, match="unknown provider or app: 'nope'"):
        catalogue.provider_for_app("nope")
    with pytest.raises(UnknownProviderError):
        catalogue.get("gmail")
    assert catalogue.find("nope") is None


def test_categories_group_providers_and_apps(catalogue):
    ids = [category.id for category in catalogue.categories()]
    for expected in [
        "email",
        "calendar",
        "code",
        "messaging",
        "file_storage",
        "crm",
        "project_management",
        "social",
        "spreadsheets",
        "documents",
        "automation",
        "database",
        "health",
        "productivity",
    ]:
        assert expected in ids
    grouped = {key: [p.id for p in value] for key, value in catalogue.by_category().items()}
    assert {"google", "microsoft", "sendgrid", "smartlead", "agentmail"} <= set(grouped["email"])
    assert {"github", "gitlab", "bitbucket"} <= set(grouped["code"])
    assert {"supabase"} <= set(grouped["database"])
    email = catalogue.available_in_category("email")
    assert {"gmail", "outlook_mail", "sendgrid"} <= set(email)
    assert "google" not in email  # the app id, not the umbrella provider, satisfies the category


@pytest.mark.parametrize(
    "provider",
    ["sendgrid", "smartlead", "agentmail", "crustdata", "apollo", "apify", "firecrawl", "telegram"],
)
def test_key_based_services_are_api_key_kind(catalogue, provider):
    definition = catalogue.get(provider)
    assert definition.auth == "api_key"
    assert definition.api_key.fields


def test_every_scope_has_a_description(catalogue):
    for definition in catalogue.providers():
        if definition.oauth:
            for scope, description in definition.oauth.scopes.available.items():
                assert description.strip(), f"{definition.id}: {scope}"


def test_tenant_definitions_layer_without_touching_the_base(catalogue):
    tenant = parse_definition(
        {
            "id": "acme_idp",
            "name": "Acme IdP",
            "category": "identity",
            "auth": "oauth2",
            "oauth": {
                "authorize_url": "https://idp.acme.example/auth",
                "token_url": "https://idp.acme.example/token",
            },
            "apps": [{"id": "acme_wiki", "name": "Acme Wiki", "category": "documents"}],
        }
    )
    layered = catalogue.with_tenant_definitions([tenant])
    assert layered.provider_for_app("acme_wiki").id == "acme_idp"
    assert "acme_idp" not in catalogue
    assert len(layered) == len(catalogue) + 1


def test_tenant_definitions_cannot_shadow_builtins(catalogue):
    shadow = parse_definition(
        {
            "id": "gmail",
            "name": "Fake",
            "category": "email",
            "auth": "oauth2",
            "oauth": {"authorize_url": "https://evil.example/a", "token_url": "https://evil.example/t"},
        }
    )
    with pytest.raises(CatalogueError, match="tenant provider 'gmail': id: 'gmail' is already used"):
        catalogue.with_tenant_definitions([shadow])


def test_public_view_is_json_ready(catalogue):
    view = catalogue.get("google").public_view()
    assert view["apps"][0] == {"id": "gmail", "name": "Gmail", "category": "email"}
    assert view["oauth"]["scopes"]["available"]["openid"]


def test_every_catalogue_provider_has_documentation_and_a_setup_guide() -> None:
    """Issue 18 item 6: the admin's provider form says how to register the app at each provider."""
    catalogue = load_catalogue(sandbox_url="http://127.0.0.1:1")
    without = [
        d.id
        for d in catalogue.providers()
        if not d.setup_guide or (not d.docs_url and not d.id.startswith("sandbox") and d.auth != "mcp_oauth")
    ]
    assert without == []


def test_a_docs_url_must_be_a_web_address() -> None:
    from grantline.providers.catalogue import CatalogueError, parse_definition

    raw = load_catalogue().get("github").model_dump(mode="json", exclude_none=True)
    with pytest.raises(CatalogueError, match="docs_url"):
        parse_definition(raw | {"docs_url": "javascript:alert(1)"})
    assert parse_definition(raw).docs_url.startswith("https://")


def test_an_api_key_check_keeps_keys_out_of_its_url_and_names_only_declared_fields() -> None:
    from grantline.providers.catalogue import CatalogueError, parse_definition

    raw = load_catalogue().get("trello").model_dump(mode="json", exclude_none=True)
    in_url = {**raw["api_key"], "check": {"url": "https://api.trello.com/1/members/me?key={api_key}"}}
    with pytest.raises(CatalogueError, match="placeholders"):
        parse_definition(raw | {"api_key": in_url})
    unknown = {**raw["api_key"], "check": {"url": "https://x.example/me", "headers": {"X": "{secret}"}}}
    with pytest.raises(CatalogueError, match="undeclared field"):
        parse_definition(raw | {"api_key": unknown})
    spec = parse_definition(raw).api_key
    assert spec is not None and spec.check_headers({"api_key": "k", "token": "t"}) == {
        "Authorization": 'OAuth oauth_consumer_key="k", oauth_token="t"'
    }
