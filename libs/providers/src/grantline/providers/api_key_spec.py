"""The `api_key` section of a provider definition: the fields a user types and the check call."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from grantline.providers.spec_base import TEMPLATE_VARIABLE, FrozenSpec, Identifier, template_variables
from grantline.providers.tenant_patterns import compile_pattern


class ApiKeyField(FrozenSpec):
    """One value the user types for an API-key connection."""

    id: Identifier
    label: str
    secret: bool = True
    pattern: str | None = None
    description: str = ""

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_pattern(value)  # PatternError is a ValueError: pydantic reports it on the field
        return value


class ApiKeyCheck(FrozenSpec):
    """A cheap call that succeeds only with a valid key (``GET /v3/scopes``): the vault makes it before
    storing a key. Fields go into headers only (``{api_key}``), never into the URL, where the
    provider's and proxies' logs would keep them."""

    url: str
    method: Literal["GET", "POST"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _no_placeholder_in_url(cls, value: str) -> str:
        if template_variables(value):
            raise ValueError("api_key.check.url must not carry placeholders: put fields in headers")
        return value


class ApiKeySpec(FrozenSpec):
    """Fields to collect and how the key is presented to the provider's API."""

    fields: tuple[ApiKeyField, ...] = Field(min_length=1)
    # Free-form hint for tool authors, e.g. "Authorization: Bearer {api_key}" or "X-Api-Key header".
    usage: str = ""
    check: ApiKeyCheck | None = None

    @model_validator(mode="after")
    def _unique_ids(self) -> ApiKeySpec:
        ids = [f.id for f in self.fields]
        if len(ids) != len(set(ids)):
            raise ValueError("api_key field ids must be unique")
        if self.check is not None:
            used = set().union(*(template_variables(v) for v in self.check.headers.values()))
            undeclared = sorted(used - set(ids))
            if undeclared:
                raise ValueError(f"api_key.check.headers use undeclared field(s) {', '.join(undeclared)}")
        return self

    def check_headers(self, values: dict[str, str]) -> dict[str, str]:
        """The check call's headers with the fields filled in."""
        assert self.check is not None
        return {
            name: TEMPLATE_VARIABLE.sub(lambda match: values.get(match.group(1), ""), template)
            for name, template in self.check.headers.items()
        }
