"""The definition schema rejects broken definitions with a message naming the field."""

from pathlib import Path

import pytest

from grantline.providers.catalogue import CatalogueError, load_catalogue, parse_definition


def minimal(**overrides):
    definition = {
        "id": "acme",
        "name": "Acme",
        "category": "crm",
        "auth": "oauth2",
        "oauth": {
            "authorize_url": "https://acme.example/oauth/authorize",
            "token_url": "https://acme.example/oauth/token",
        },
    }
    definition.update(overrides)
    return definition


def test_a_typical_provider_takes_a_few_lines():
    definition = parse_definition(minimal())
    assert definition.oauth.scopes.param == "scope"
    assert definition.oauth.pkce == "none"
    assert definition.enabled


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"auth": "magic"}, "auth: Input should be 'oauth2', 'api_key' or 'mcp_oauth'"),
        ({"id": "Acme!"}, "id: String should match pattern"),
        ({"oauth": None}, "auth 'oauth2' needs an 'oauth' section"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        (
            {"oauth": {"authorize_url": "https://a/{shop}", "token_url": "https://a/t"}},
            "authorize_url uses undeclared template variable(s) shop",
        ),
        (
            {
                "oauth": {
                    "authorize_url": "https://a",
                    "token_url": "https://a/t",
                    "scopes": {"default": ["read"], "available": {"write": "Write"}},
                }
            },
            "oauth.scopes: default scopes not listed in available: read",
        ),
        (
            {"oauth": {"authorize_url": "https://a", "token_url": "https://a/t", "pkce": "maybe"}},
            "oauth.pkce: Input should be 'required', 'supported' or 'none'",
        ),
        (
            {
                "oauth": {
                    "authorize_url": "https://a",
                    "token_url": "https://a/t",
                    "authorize_params": {"state": "x"},
                }
            },
            "authorize_params must not set state",
        ),
        (
            {"settings": {"shop": {"label": "Shop", "pattern": "([a-z"}}},
            "settings.shop.pattern: pattern does not compile",
        ),
        ({"refresh": {"non_expiring": True, "rotating": True}}, "non_expiring excludes rotating"),
        (
            {"account": {"source": "userinfo", "id_path": "sub"}},
            "account.source 'userinfo' needs oauth.userinfo_url",
        ),
        ({"apps": [{"id": "a", "name": "A", "category": "crm"}] * 2}, "app ids must be unique"),
    ],
)
def test_broken_definitions_are_rejected_precisely(overrides, expected):
    with pytest.raises(CatalogueError) as caught:
        parse_definition(minimal(**overrides), source="tenant/acme")
    message = str(caught.value)
    assert message.startswith("tenant/acme: ")
    assert expected in message


def test_api_key_providers_need_fields_and_no_oauth():
    with pytest.raises(CatalogueError, match="auth 'api_key' needs an 'api_key' section"):
        parse_definition({"id": "k", "name": "K", "category": "crm", "auth": "api_key"})
    parsed = parse_definition(
        {
            "id": "k",
            "name": "K",
            "category": "crm",
            "auth": "api_key",
            "api_key": {"fields": [{"id": "token", "label": "T"}]},
        }
    )
    assert parsed.api_key.fields[0].secret


def test_definitions_are_frozen():
    definition = parse_definition(minimal())
    with pytest.raises(Exception):
        definition.name = "Other"  # type: ignore[misc]


def test_a_bad_file_in_an_extra_dir_names_file_and_field(tmp_path: Path):
    (tmp_path / "acme.yaml").write_text(
        "id: acme\nname: Acme\ncategory: crm\nauth: oauth2\noauth:\n  token_url: x\n"
    )
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(extra_dirs=[tmp_path])
    assert f"{tmp_path}/acme.yaml: oauth.authorize_url: Field required" in str(caught.value)


def test_file_name_must_match_id(tmp_path: Path):
    (tmp_path / "other.yaml").write_text(
        "id: acme\nname: Acme\ncategory: crm\nauth: oauth2\noauth: {authorize_url: a, token_url: b}\n"
    )
    with pytest.raises(CatalogueError, match=r"other\.yaml: id: 'acme' must match the file name"):
        load_catalogue(extra_dirs=[tmp_path])


def test_unknown_category_is_rejected(tmp_path: Path):
    (tmp_path / "acme.yaml").write_text(
        "id: acme\nname: Acme\ncategory: nope\nauth: oauth2\noauth: {authorize_url: a, token_url: b}\n"
    )
    with pytest.raises(CatalogueError, match=r"acme\.yaml: category: unknown category 'nope'"):
        load_catalogue(extra_dirs=[tmp_path])


def test_invalid_yaml_is_reported_with_the_file(tmp_path: Path):
    (tmp_path / "acme.yaml").write_text("id: [unclosed\n")
    with pytest.raises(CatalogueError, match=r"acme\.yaml: not valid YAML"):
        load_catalogue(extra_dirs=[tmp_path])
