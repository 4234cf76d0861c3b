"""Jinja2 rendering with the headers every page gets (CSP, no caching, no referrer)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from grantline.auth_gateway.entrypoints.ui import languages

_PACKAGE = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = _PACKAGE / "templates"
STATIC_DIR = _PACKAGE / "static"

# No inline script or style anywhere, so the policy can forbid them. There is no form-action
# directive on purpose: the consent form is answered with a redirect to the provider, and Chromium
# applies form-action to that redirect too.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": _CSP,
    "Cache-Control": "no-store",
    # A connect-session token or an OAuth state may be in a URL once: never pass it on to another
    # site. Not `no-referrer`: that would make our own form posts say `Origin: null`.
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


def _environment(language: str) -> Environment:
    # Newstyle gettext: `_("... %(name)s", name=x)` escapes `x` under autoescape and fails loudly on
    # a missing placeholder. One environment per language, so no request swaps another's catalogue.
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(languages.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["when"] = _when
    env.filters["iso"] = _iso
    env.globals["language_names"] = languages.LANGUAGE_NAMES
    return env


_envs = {language: _environment(language) for language in languages.LANGUAGES}


def render(template: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    """A page with the security headers, in the request's language."""
    page = languages.current()
    html = _envs[page.code].get_template(template).render({**context, "lang": page.code, "here": page.here})
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def redirect(url: str) -> RedirectResponse:
    """A 303 (the browser follows with GET) with the security headers."""
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def with_headers(response: Response) -> Response:
    """Add the security headers to a response built elsewhere."""
    response.headers.update(SECURITY_HEADERS)
    return response
