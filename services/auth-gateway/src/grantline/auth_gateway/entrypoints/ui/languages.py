"""The pages' language: chosen per request (cookie, then Accept-Language, then English), translated
with Babel from the .po catalogues under `locale/` (compiled in memory on first use, so a checkout and
the wheel need no build step).

Nothing here loads Babel's CLDR locale data (about 5 MB per process): the language names are written
out, and a catalogue's plural rule comes from its own `Plural-Forms` header.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from babel import negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import LazyProxy, NullTranslations, Translations
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

LOCALE_DIR = Path(__file__).resolve().parents[2] / "locale"
SOURCE_LANGUAGE = "en"
LANGUAGES = ("en", "ru")
LANG_COOKIE = "lang"
# The switch names each language in that language, so it is found whatever the page's language is.
# (CLDR's names, capitalised; tests/ui/test_ui_catalogues.py checks them against Babel's.)
LANGUAGE_NAMES = {"en": "English", "ru": "Русский"}
PAGE_PREFIXES = ("/admin", "/connect", "/ui")
SAFE_DEFAULT_PAGE = "/admin"


@dataclass(frozen=True)
class PageLanguage:
    """What one page request renders in, and where the language switch returns to."""

    code: str = SOURCE_LANGUAGE
    here: str = SAFE_DEFAULT_PAGE


_current: ContextVar[PageLanguage] = ContextVar("ui_page_language")
_OUTSIDE_A_PAGE = PageLanguage()


def current() -> PageLanguage:
    """The language of the page being rendered (English outside a page request)."""
    return _current.get(_OUTSIDE_A_PAGE)


@cache
def translations(code: str) -> NullTranslations:
    """The catalogue of one supported language; the source language needs none."""
    if code == SOURCE_LANGUAGE:
        return NullTranslations()
    with (LOCALE_DIR / code / "LC_MESSAGES" / "messages.po").open("rb") as po:
        # No `locale=`: it would load CLDR data for the plural rule the catalogue's header already states.
        catalog = read_po(po)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled)


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The `lang` cookie if it names a supported language, else Accept-Language (q-values honoured)."""
    if cookie in LANGUAGES:
        return cookie
    wanted = _by_preference(accept_language or "")
    return negotiate_locale(wanted, LANGUAGES, sep="-") or SOURCE_LANGUAGE


def _by_preference(header: str) -> list[str]:
    """Accept-Language's tags, most wanted first (ties in header order); `q=0` and `*` left out."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")):
        tag, _semicolon, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _equals, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, position, tag.lower()))
    # Also offer each tag's primary language ("ru-RU" -> "ru") right after it.
    ordered: list[str] = []
    for _quality, _position, tag in sorted(ranked):
        ordered.extend([tag, tag.split("-")[0]])
    return ordered


def gettext(message: str, **variables: Any) -> str:
    """`message` in the page's language, with `%(name)s` placeholders filled in."""
    translated = translations(current().code).gettext(message)
    return translated % variables if variables else translated


_ = gettext


def lazy_gettext(message: str, **variables: Any) -> Any:
    """A module-level message, translated each time it is shown (never at import)."""
    return LazyProxy(gettext, message, enable_cache=False, **variables)


def safe_return_path(candidate: str | None) -> str:
    """A same-origin relative path to go back to, or the safe default (no open redirect)."""
    if not candidate or not candidate.startswith("/") or candidate.startswith("//"):
        return SAFE_DEFAULT_PAGE
    if "\\" in candidate or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in candidate):
        return SAFE_DEFAULT_PAGE
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc:
        return SAFE_DEFAULT_PAGE
    return candidate


class PageLanguageMiddleware:
    """Sets the page language (and the switch's way back) for the browser pages' requests."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PAGE_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cookie = cookie_parser(headers.get("cookie", "")).get(LANG_COOKIE)
        code = choose(cookie, headers.get("accept-language"))
        token = _current.set(PageLanguage(code=code, here=_way_back(scope)))
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)


def _way_back(scope: Scope) -> str:
    """The page itself for a GET; after a form post its area's start page (a GET there may not exist)."""
    path: str = scope["path"]
    if scope["method"] != "GET":
        return "/connect" if path.startswith("/connect") else SAFE_DEFAULT_PAGE
    query = scope.get("query_string", b"").decode("latin-1")
    return safe_return_path(path + ("?" + query if query else ""))
