"""`/ui/lang`: the language switch in every page's footer (a cookie, then back to the same page)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from grantline.auth_gateway.entrypoints.ui import languages
from grantline.auth_gateway.entrypoints.ui.browser_sessions import set_session_cookie
from grantline.auth_gateway.entrypoints.ui.rendering import redirect

router = APIRouter(include_in_schema=False)

SWITCH_PATH = "/ui/lang"
_ONE_YEAR = 365 * 24 * 3600


@router.get(SWITCH_PATH)
async def switch_language(request: Request, lang: str = "", next: str = "") -> Response:
    """Remember the language in this browser and go back to the page (same origin only).

    A plain link, not a form: the cookie holds no secret and changes nothing but the wording, and a
    link needs no script under the pages' CSP. The page's query is kept, so a connect session opened
    by the widget carries on where it was.
    """
    response = redirect(languages.safe_return_path(next))
    if lang in languages.LANGUAGES:
        set_session_cookie(
            request,
            response,
            name=languages.LANG_COOKIE,
            value=lang,
            path="/",
            max_age=_ONE_YEAR,
            same_site="lax",
        )
    return response
