"""Authorize URLs carry each provider's documented quirks."""

from urllib.parse import parse_qs, urlsplit

import pytest

from grantline.providers.authorize import (
    NotAnOAuthProviderError,
    PkceRequiredError,
    SettingsError,
    build_authorize_url,
    code_challenge_s256,
    new_code_verifier,
    resolve_settings,
)
from grantline.providers.catalogue import load_catalogue

ATLASSIAN_CLOUD_ID = "1324a887-45db-1bf4-1e99-ef0ff456d421"


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


def authorize(catalogue, provider, *, scopes=None, challenge="c" * 43, settings=None):
    url = build_authorize_url(
        catalogue.get(provider),
        client_id="client-1",
        redirect_uri="https://grantline.example/v1/oauth/callback",
        scopes=scopes,
        state="state-123",
        code_challenge=challenge,
        settings=settings,
    )
    parts = urlsplit(url)
    return parts, {key: values[0] for key, values in parse_qs(parts.query).items()}


def test_pkce_s256_matches_rfc7636_appendix_b():
    assert (
        code_challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_new_verifiers_are_long_random_and_valid():
    first, second = new_code_verifier(), new_code_verifier()
    assert first != second and 43 <= len(first) <= 128
    code_challenge_s256(first)
    with pytest.raises(ValueError):
        code_challenge_s256("too short")


def test_standard_parameters(catalogue):
    parts, query = authorize(catalogue, "discord")
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://discord.com/oauth2/authorize"
    assert query["response_type"] == "code"
    assert query["client_id"] == "client-1"
    assert query["state"] == "state-123"
    assert query["scope"] == "identify guilds"
    assert query["code_challenge_method"] == "S256"
    assert "%20" in parts.query  # spaces encoded as %20, not '+'


def test_google_asks_for_offline_access_and_consent(catalogue):
    _, query = authorize(
        catalogue, "google", scopes=["openid", "https://www.googleapis.com/auth/gmail.readonly"]
    )
    assert query["access_type"] == "offline"
    assert query["prompt"] == "consent"
    assert query["scope"] == "openid https://www.googleapis.com/auth/gmail.readonly"


def test_slack_sends_comma_separated_user_scope(catalogue):
    _, query = authorize(catalogue, "slack", scopes=["channels:read", "chat:write"], challenge=None)
    assert query["user_scope"] == "channels:read,chat:write"
    assert "scope" not in query


def test_slack_mcp_requires_pkce_and_uses_its_own_endpoint(catalogue):
    parts, query = authorize(catalogue, "slack_mcp")
    assert parts.path == "/oauth/v2_user/authorize"
    assert query["code_challenge_method"] == "S256"
    with pytest.raises(PkceRequiredError):
        authorize(catalogue, "slack_mcp", challenge=None)


@pytest.mark.parametrize("provider", ["github_mcp", "shopify", "canva", "x", "airtable", "slack_mcp"])
def test_pkce_required_providers_refuse_to_build_without_a_challenge(catalogue, provider):
    settings = {"shop": "my-store"} if provider == "shopify" else None
    with pytest.raises(PkceRequiredError):
        authorize(catalogue, provider, challenge=None, settings=settings)


def test_pkce_is_not_sent_to_providers_without_pkce(catalogue):
    _, query = authorize(catalogue, "todoist")
    assert "code_challenge" not in query


def test_linear_acts_as_the_user(catalogue):
    _, query = authorize(catalogue, "linear")
    assert query["actor"] == "user"
    assert query["scope"] == "read,write"


def test_asana_mcp_sends_no_scope_and_a_resource(catalogue):
    _, query = authorize(catalogue, "asana_mcp", scopes=["default"])
    assert "scope" not in query
    assert query["resource"] == "https://mcp.asana.com/v2"


def test_notion_scopes_are_informational(catalogue):
    definition = catalogue.get("notion")
    assert definition.oauth.scopes.informational
    assert definition.oauth.scopes.available["read_content"]
    _, query = authorize(catalogue, "notion")
    assert "scope" not in query
    assert query["owner"] == "user"


def test_atlassian_needs_a_uuid_cloud_id_and_offline_access(catalogue):
    definition = catalogue.get("atlassian")
    assert "offline_access" in definition.oauth.scopes.default
    assert definition.oauth.scopes.always == ("offline_access",)
    _, query = authorize(catalogue, "atlassian", settings={"cloud_id": ATLASSIAN_CLOUD_ID})
    assert "offline_access" in query["scope"].split(" ")
    assert query["audience"] == "api.atlassian.com"
    # Without a cloud id the flow starts all the same: the vault finds it after the grant.
    _, query = authorize(catalogue, "atlassian")
    assert query["audience"] == "api.atlassian.com"
    with pytest.raises(SettingsError, match="setting 'cloud_id' value 'my-site' does not match"):
        authorize(catalogue, "atlassian", settings={"cloud_id": "my-site"})


def test_shopify_shop_goes_into_the_host(catalogue):
    parts, _ = authorize(catalogue, "shopify", settings={"shop": "my-store"})
    assert parts.netloc == "my-store.myshopify.com"
    assert parts.path == "/admin/oauth/authorize"


@pytest.mark.parametrize(
    "shop", ["My-Store", "evil.com/", "my.store", "-store", "store?x=1", "a@b", "", "store#frag", "evil.com#"]
)
def test_shopify_shop_is_validated_before_substitution(catalogue, shop):
    with pytest.raises(SettingsError, match=r"\^\[a-z0-9\]\[a-z0-9-\]\*\$"):
        authorize(catalogue, "shopify", settings={"shop": shop})


def test_unknown_settings_are_rejected(catalogue):
    with pytest.raises(SettingsError, match="has no setting"):
        resolve_settings(catalogue.get("google"), {"shop": "x"})


def test_microsoft_tenant_defaults_to_common(catalogue):
    parts, query = authorize(catalogue, "microsoft")
    assert parts.path == "/common/oauth2/v2.0/authorize"
    assert "offline_access" in query["scope"].split(" ")
    parts, _ = authorize(catalogue, "microsoft", settings={"tenant": "contoso.onmicrosoft.com"})
    assert parts.path == "/contoso.onmicrosoft.com/oauth2/v2.0/authorize"


def test_tiktok_names_the_client_id_client_key(catalogue):
    _, query = authorize(catalogue, "tiktok")
    assert query["client_key"] == "client-1"
    assert "client_id" not in query


def test_explicit_empty_scopes_send_no_scope(catalogue):
    _, query = authorize(catalogue, "discord", scopes=[])
    assert "scope" not in query


def test_duplicate_scopes_are_sent_once(catalogue):
    _, query = authorize(catalogue, "discord", scopes=["identify", "identify", "email"])
    assert query["scope"] == "identify email"


def test_api_key_providers_have_no_authorize_url(catalogue):
    with pytest.raises(NotAnOAuthProviderError):
        authorize(catalogue, "sendgrid")
