"""Checks for what arrives in page URLs and forms (the API's own validation does not run here)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from grantline.auth_gateway.entrypoints.ui.languages import _, lazy_gettext
from grantline.contract.audit import ACTION_PATTERN
from grantline.contract.envelope import PROVIDER_APP_NAME_PATTERN

PROVIDER_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
APP_NAME = re.compile(PROVIDER_APP_NAME_PATTERN)
CONNECTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Users, runs: opaque ids from the platform; printable, bounded.
OPAQUE_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")
ACTION = re.compile(ACTION_PATTERN)
CURSOR = re.compile(r"^[A-Za-z0-9_=:.+/-]{1,1000}$")
OUTCOME_CODE = re.compile(r"^[a-z_]{1,64}$")
STATUSES = ("active", "reauth_required", "revoked", "pending")
STALE_FORM = lazy_gettext(
    "This form has expired or did not come from this site. Reload the page and try again."
)


class BadInput(ValueError):
    """A filter or form value that does not have the expected shape; the message is safe to show."""


def optional(value: str | None, pattern: re.Pattern[str], what: str) -> str | None:
    """`value` stripped, None when empty, or raise `BadInput` when it does not match."""
    value = (value or "").strip()
    if not value:
        return None
    if not pattern.fullmatch(value):
        raise BadInput(_("%(field)s is not valid", field=what))
    return value


def outcome_param(value: str | None) -> str | None:
    """A status or error code from a redirect's query, or None when absent or odd."""
    value = (value or "").strip()
    return value if OUTCOME_CODE.fullmatch(value) else None


def connection_settings(form: Mapping[str, Any]) -> dict[str, str]:
    """A new connection's own settings from `setting_<name>` fields; blank ones keep the provider app's."""
    return {
        key.removeprefix("setting_"): value.strip()
        for key, value in form.items()
        if key.startswith("setting_") and isinstance(value, str) and value.strip()
    }
