"""Settings read after the grant (`discover_settings`): which value a provider's answer gives (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grantline.providers.authorize import SettingsError
from grantline.providers.definition import ProviderDefinition, SettingDiscovery
from grantline.providers.tenant_patterns import value_matches


def _at_path(document: Any, path: str) -> Any:
    for segment in path.split(".") if path else ():
        if not isinstance(document, Mapping):
            return None
        document = document.get(segment)
    return document


def pending_discoveries(
    definition: ProviderDefinition, settings: Mapping[str, str]
) -> list[SettingDiscovery]:
    """The discoveries still to make for a connection with these settings (the user gave none of them)."""
    return [d for d in definition.discover_settings if d.setting not in settings]


def discovered_value(
    definition: ProviderDefinition, discovery: SettingDiscovery, document: Any, settings: Mapping[str, str]
) -> str:
    """The setting's value from the provider's answer; SettingsError when it names none that fits.

    With `match_setting` given by the user, the resource whose `match_path` equals it is taken (the
    site the user asked for); otherwise the first one the grant reaches.
    """
    resources = _at_path(document, discovery.list_path)
    if not isinstance(resources, list) or not resources:
        raise SettingsError(f"{definition.name} reports no resource this grant reaches ({discovery.setting})")
    wanted = settings.get(discovery.match_setting) if discovery.match_setting else None
    if wanted is not None and discovery.match_path:
        path = discovery.match_path
        resources = [r for r in resources if str(_at_path(r, path) or "").rstrip("/") == wanted.rstrip("/")]
        if not resources:
            raise SettingsError(f"the grant does not reach {wanted}; the user chose another one at consent")
    value = _at_path(resources[0], discovery.value_path)
    spec = definition.settings[discovery.setting]
    if not isinstance(value, str) or not value_matches(spec.pattern, value):
        raise SettingsError(f"{definition.name} answered no valid {discovery.setting}")
    return value
