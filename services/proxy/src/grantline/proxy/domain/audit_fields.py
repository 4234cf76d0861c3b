"""What an audit record of a proxied call says about the request and (opt-in) the response.

Paths keep their ids (they say what was touched) and lose query values (search terms, emails and
the occasional key a provider takes in the query); query names stay. A response excerpt is cut to
N bytes, then the access token itself, the values of JSON fields named like a secret (the field
may be cut off mid-value: the rest of it goes too) and anything shaped like a credential
(``grantline.runtime.secrets.redact``) are replaced; so are secret-named headers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl

from grantline.runtime.secrets import REDACTED, is_secret_key, redact

_SECRET_NAME = (
    r"[A-Za-z0-9_.-]*(?:token|secret|password|passwd|api[_-]?key|apikey|credential|assertion|"
    r"session|cookie|authorization|code|signature)[A-Za-z0-9_.-]*"
)
# A secret-named field's string value, closed or cut off by the excerpt's end.
_JSON_FIELD = re.compile(rf'("{_SECRET_NAME}"\s*:\s*)"(?:[^"\\]|\\.)*"?', re.IGNORECASE)


def audit_path(path: str, query: str) -> str:
    """The path as recorded: ids kept, query values dropped (``/items/42?q=&page=``)."""
    names = [name for name, _ in parse_qsl(query, keep_blank_values=True)]
    return path + ("?" + "&".join(f"{name}=" for name in names) if names else "")


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with the given secrets, secret-named JSON fields and credential-shaped values replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _JSON_FIELD.sub(lambda m: f'{m.group(1)}"{REDACTED}"', text)
    return redact(text)


def response_excerpt(body: bytes, limit: int, secrets: Iterable[str] = ()) -> str:
    """The first ``limit`` bytes of a response body as text, redacted."""
    return redact_text(body[:limit].decode("utf-8", errors="replace"), secrets)


def redacted_headers(headers: Iterable[tuple[str, str]], secrets: Iterable[str] = ()) -> dict[str, str]:
    """Response headers for an excerpt: secret-named ones replaced, the others' values redacted."""
    kept = list(secrets)
    return {
        name.lower(): REDACTED if is_secret_key(name) else redact_text(value, kept) for name, value in headers
    }
