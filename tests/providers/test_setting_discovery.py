"""Settings read after the grant, and scopes asked for on every request (Atlassian)."""

import pytest
from pydantic import ValidationError

from grantline.providers.authorize import SettingsError, resolve_settings, with_always_scopes
from grantline.providers.catalogue import load_catalogue
from grantline.providers.definition import ProviderDefinition
from grantline.providers.setting_discovery import discovered_value, pending_discoveries

SITES = [
    {"id": "11111111-1111-1111-1111-111111111111", "url": "https://one.atlassian.net"},
    {"id": "22222222-2222-2222-2222-222222222222", "url": "https://two.atlassian.net"},
]


@pytest.fixture(scope="module")
def atlassian() -> ProviderDefinition:
    definition = load_catalogue().find("atlassian")
    assert definition is not None
    return definition


def test_offline_access_is_never_lost(atlassian):
    assert with_always_scopes(atlassian, ["read:jira-work"]) == ["read:jira-work", "offline_access"]
    assert with_always_scopes(atlassian, ["offline_access", "read:me"]) == ["offline_access", "read:me"]


def test_cloud_id_may_be_missing_at_the_start_but_must_match_when_given(atlassian):
    assert resolve_settings(atlassian, {}) == {}
    with pytest.raises(SettingsError):
        resolve_settings(atlassian, {"cloud_id": "../../admin"})
    with pytest.raises(SettingsError):
        resolve_settings(atlassian, {"site_url": "https://one.atlassian.net.evil.example"})


def test_the_first_site_or_the_one_named(atlassian):
    (discovery,) = pending_discoveries(atlassian, {})
    assert discovered_value(atlassian, discovery, SITES, {}) == SITES[0]["id"]
    named = {"site_url": "https://two.atlassian.net"}
    assert discovered_value(atlassian, discovery, SITES, named) == SITES[1]["id"]
    assert pending_discoveries(atlassian, {"cloud_id": SITES[0]["id"]}) == []


@pytest.mark.parametrize(
    ("document", "settings"),
    [
        ([], {}),
        ({"not": "a list"}, {}),
        (SITES, {"site_url": "https://three.atlassian.net"}),
        ([{"id": "not a uuid", "url": "https://one.atlassian.net"}], {}),
        ([{"url": "https://one.atlassian.net"}], {}),
    ],
)
def test_an_answer_without_a_fitting_site_is_refused(atlassian, document, settings):
    (discovery,) = pending_discoveries(atlassian, {})
    with pytest.raises(SettingsError):
        discovered_value(atlassian, discovery, document, settings)


def test_a_discovery_must_name_declared_settings_and_a_fixed_url(atlassian):
    data = atlassian.model_dump(mode="json", exclude_none=True)
    for discovery in (
        {"setting": "region", "url": "https://example.com/r"},
        {"setting": "cloud_id", "url": "https://{site_url}/r"},
    ):
        with pytest.raises(ValidationError):
            ProviderDefinition.model_validate({**data, "discover_settings": [discovery]})
    with pytest.raises(ValidationError):
        ProviderDefinition.model_validate(
            {**data, "oauth": {**data["oauth"], "scopes": {**data["oauth"]["scopes"], "always": ["nope"]}}}
        )
