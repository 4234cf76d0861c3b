"""The request that asks a provider whether an access token still works (a dead-connection check)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr

from grantline.providers.authorize import render_template, template_values
from grantline.providers.definition import ProviderDefinition
from grantline.providers.token_request import ProviderRequest, build_userinfo_request


def check_request(
    definition: ProviderDefinition, access_token: SecretStr, settings: Mapping[str, str]
) -> ProviderRequest | None:
    """A GET of `api.check_path` with the token sent as the API takes it, else the userinfo request;
    None when the definition has neither."""
    api = definition.api
    if api is not None and api.check_path is not None:
        url = render_template(api.base_url, template_values(definition, settings)).rstrip("/")
        value = api.token_format.replace("{token}", access_token.get_secret_value())
        headers = {**api.headers, "Accept": "application/json", api.token_header: value}
        return ProviderRequest(url=url + api.check_path, headers=headers, body=None, method="GET")
    if definition.oauth is None:
        return None
    return build_userinfo_request(definition, access_token, settings=settings)
