"""`return_to` allow-listing: where the gateway may send a browser after a flow (no open redirect).

An allow-list entry is an origin (`https://app.example.com`) or an origin plus a path prefix
(`https://app.example.com/settings`); the port may be `*` (`http://127.0.0.1:*`, for development
front ends on changing ports). A URL matches when scheme, host (case-insensitive, IDNA) and
port are equal and its path is the prefix or lies under it at a segment boundary. Anything a
browser could read differently from us (backslashes, control characters, userinfo, dot segments,
encoded slashes) is refused rather than normalised.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_LENGTH = 2048
# RFC 3986 characters left as they are when re-serialising path, query and fragment.
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?"


class ReturnToError(ValueError):
    """`return_to` is not an allowed destination; the message says why and is safe to show."""


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int | None  # None: any port (an allow-list entry written with `:*`)
    path: str


def check_return_to(url: str, allow_list: list[str]) -> str:
    """Return `url` in canonical form if it matches an allow-list entry, else raise `ReturnToError`.

    The returned string is rebuilt from the checked parts (lower-case scheme, ASCII host), so
    what the browser is sent to is exactly what was checked.
    """
    parts = _parse(url, what="return_to")
    target = _target(parts, what="return_to")
    if parts.path and not _path_is_plain(parts.path):
        raise ReturnToError("return_to path has dot segments or encoded slashes")
    for entry in allow_list:
        allowed = _allow_entry(entry)
        same_port = allowed.port is None or allowed.port == target.port
        if (
            (allowed.scheme, allowed.host) == (target.scheme, target.host)
            and same_port
            and (_under_prefix(target.path or "/", allowed.path))
        ):
            return _rebuild(parts, target)
    raise ReturnToError("return_to is not in the tenant's allow-list")


def registered_origin(origin: str, allow_list: list[str]) -> str:
    """``origin`` (``scheme://host[:port]``, nothing after it) in canonical form when an allow-list
    entry has that scheme, host and port (any path); else ``ReturnToError``.

    The connect widget's opener page must be one of the platform's registered origins: the connect
    page posts the outcome to exactly that origin, so no other page can read it.
    """
    parts = _parse(origin, what="opener origin")
    if parts.path or parts.query or parts.fragment:
        raise ReturnToError("opener origin must be scheme://host[:port] only")
    target = _target(parts, what="opener origin")
    for entry in allow_list:
        allowed = _allow_entry(entry)
        if (allowed.scheme, allowed.host) == (target.scheme, target.host) and allowed.port in (
            None,
            target.port,
        ):
            default = _DEFAULT_PORTS[target.scheme]
            port = "" if target.port == default else f":{target.port}"
            return f"{target.scheme}://{target.host}{port}"
    raise ReturnToError("opener origin is not one of the tenant's registered origins")


def with_outcome(return_to: str, **params: str | None) -> str:
    """`return_to` with outcome parameters (status, connection_id, provider, error) in its query.

    Existing parameters are kept in order; one with the same name as an outcome parameter is
    replaced so the outcome cannot be pre-set by whoever built the URL. None values are skipped.
    """
    parts = urlsplit(return_to)
    outcome = {key: value for key, value in params.items() if value is not None}
    kept = [
        (key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key not in outcome
    ]
    query = urlencode([*kept, *outcome.items()])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _parse(url: str, *, what: str) -> SplitResult:
    if not isinstance(url, str) or not url:
        raise ReturnToError(f"{what} is empty")
    if len(url) > _MAX_LENGTH:
        raise ReturnToError(f"{what} is longer than {_MAX_LENGTH} characters")
    # Browsers silently drop tabs/newlines and strip control characters and spaces, so
    # "java\tscript:" or " //evil" could navigate somewhere we did not check; CR/LF also split headers.
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise ReturnToError(f"{what} contains whitespace or control characters")
    # WHATWG URL parsing treats "\" as "/" for http(s); urlsplit does not. Never let them disagree.
    if "\\" in url:
        raise ReturnToError(f"{what} contains a backslash")
    if url.startswith("//"):
        raise ReturnToError(f"{what} is protocol-relative; give the scheme")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. bad IPv6 literal, NFKC tricks in the host
        raise ReturnToError(f"{what} is not a valid URL") from exc
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise ReturnToError(f"{what} must be an http or https URL")
    return parts


def _target(parts: SplitResult, *, what: str) -> _Target:
    scheme = parts.scheme.lower()
    if not parts.netloc:
        raise ReturnToError(f"{what} has no host")
    if "@" in parts.netloc:
        raise ReturnToError(f"{what} must not contain user information (user@host)")
    try:
        port = parts.port
    except ValueError as exc:
        raise ReturnToError(f"{what} has an invalid port") from exc
    host = parts.hostname or ""
    if not host:
        raise ReturnToError(f"{what} has no host")
    return _Target(scheme, _ascii_host(host, what=what), port or _DEFAULT_PORTS[scheme], parts.path)


def _ascii_host(host: str, *, what: str) -> str:
    if ":" in host:  # urlsplit has already removed the brackets of an IPv6 literal
        try:
            return f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError as exc:
            raise ReturnToError(f"{what} host is not a valid IPv6 address") from exc
    if host.endswith("."):
        raise ReturnToError(f"{what} host must not end with a dot")
    try:
        # The stdlib codec lower-cases via nameprep and punycodes each label (IDNA 2003).
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise ReturnToError(f"{what} host is not a valid domain name") from exc
    if not all(char.isalnum() or char in "-." for char in ascii_host) or "" in ascii_host.split("."):
        raise ReturnToError(f"{what} host is not a valid domain name")
    return ascii_host


def _path_is_plain(path: str) -> bool:
    lowered = path.lower()
    if "%2f" in lowered or "%5c" in lowered:
        return False
    # "%2e%2e" is ".." to a browser; both forms could climb out of an allowed prefix.
    return all(unquote(segment) not in (".", "..") for segment in path.split("/"))


def _allow_entry(entry: str) -> _Target:
    any_port = False
    scheme, sep, rest = entry.partition("://")
    authority, slash, path = rest.partition("/")
    if sep and authority.endswith(":*"):
        any_port = True
        entry = f"{scheme}://{authority[:-2]}{slash}{path}"
    parts = _parse(entry, what="allow-list entry")
    if parts.query or parts.fragment:
        raise ReturnToError("an allow-list entry is an origin or origin + path, without query or fragment")
    target = _target(parts, what="allow-list entry")
    if not _path_is_plain(target.path):
        raise ReturnToError("allow-list entry path has dot segments or encoded slashes")
    port = None if any_port else target.port
    return _Target(target.scheme, target.host, port, target.path.rstrip("/") or "/")


def _under_prefix(path: str, prefix: str) -> bool:
    if prefix == "/":
        return True
    # Segment boundary: "/app" allows "/app" and "/app/x", never "/application".
    return path == prefix or path.startswith(prefix + "/")


def check_allow_entry(entry: str) -> str:
    """Validate one allow-list entry (origin or origin + path, port may be `*`); returns it unchanged."""
    _allow_entry(entry)
    return entry


def _rebuild(parts: SplitResult, target: _Target) -> str:
    host = (
        f"{target.host}" if target.port == _DEFAULT_PORTS[target.scheme] else f"{target.host}:{target.port}"
    )
    return urlunsplit(
        (
            target.scheme,
            host,
            quote(parts.path, safe=_SAFE_PATH),
            quote(parts.query, safe=_SAFE_QUERY),
            quote(parts.fragment, safe=_SAFE_QUERY),
        )
    )
