"""What a page says about a refused request, in the page's language.

A problem's `detail` is written for API callers: English, stable, naming the specifics (a scope, a
provider, a setting). On a page in another language the reader first needs to know, in their own
language, what kind of failure it is and what to do; so such a page shows a sentence for the
problem's code, then the English detail for the specifics. An English page shows the detail alone.
"""

from __future__ import annotations

from typing import Any

from grantline.auth_gateway.entrypoints.ui.languages import SOURCE_LANGUAGE, current, gettext, lazy_gettext
from grantline.auth_gateway.service.problems import Problem

# One sentence per problem code (the gateway's own and the vault's `ErrorCode`s it passes on).
_BY_CODE: dict[str, Any] = {
    "not_found": lazy_gettext("What this page asked for does not exist, or is not yours."),
    "forbidden": lazy_gettext("This is not allowed."),
    "unauthorized": lazy_gettext("Sign in again to continue."),
    "invalid_request": lazy_gettext("This request was refused as it stands."),
    "invalid_settings": lazy_gettext("These settings were refused."),
    "conflict": lazy_gettext("This conflicts with something that already exists."),
    "rate_limited": lazy_gettext("Too many attempts. Wait a moment, then try again."),
    "provider_disabled": lazy_gettext("This provider is switched off here."),
    "provider_app_missing": lazy_gettext("This provider is not set up yet. Ask your administrator."),
    "provider_app_disabled": lazy_gettext("This provider's app is switched off. Ask your administrator."),
    "provider_app_misconfigured": lazy_gettext(
        "This provider's app is set up wrongly. Ask your administrator."
    ),
    "provider_unavailable": lazy_gettext("The provider did not answer as expected. Try again shortly."),
    "bad_gateway": lazy_gettext("The provider did not answer as expected. Try again shortly."),
    "service_unavailable": lazy_gettext("Grantline is busy. Try again shortly."),
    "internal": lazy_gettext("Something went wrong on our side. Try again shortly."),
    "mcp_discovery_failed": lazy_gettext("The server's sign-in could not be found."),
    "wrong_account": lazy_gettext("You signed in as another account than the one expected."),
    "missing_scopes": lazy_gettext("Some permissions that are needed were not granted."),
    "reauth_required": lazy_gettext("This connection needs to be authorized again."),
    "revoked": lazy_gettext("This connection was revoked."),
    "not_connected": lazy_gettext("Nothing is connected for this yet."),
    "return_to_not_allowed": lazy_gettext("The page to return to is not allowed."),
}
_ANY_OTHER = lazy_gettext("The request could not be completed.")


class PageProblem(Problem):
    """A problem a page found itself, its detail already in the page's language (``_(...)``)."""


def page_error(problem: Problem) -> str:
    """The alert text for ``problem`` on the page being rendered."""
    if isinstance(problem, PageProblem) or current().code == SOURCE_LANGUAGE:
        return problem.detail
    sentence = str(_BY_CODE.get(problem.code, _ANY_OTHER))
    return gettext("%(sentence)s Details: %(detail)s", sentence=sentence, detail=problem.detail)
