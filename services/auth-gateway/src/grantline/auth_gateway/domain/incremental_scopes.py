"""Incremental authorization: a re-authorization asks for what was granted plus what is new."""

from __future__ import annotations

from collections.abc import Iterable


def scopes_for_reauthorization(
    granted: Iterable[str], requested: Iterable[str], defaults: Iterable[str]
) -> list[str]:
    """Union of granted, requested and default scopes: first-seen order, no duplicates, no blanks.

    Granted scopes come first so a re-authorization never silently drops what the connection
    already holds. Items containing spaces are split, since an OAuth scope string is
    space-delimited (RFC 6749 section 3.3) and a scope token cannot contain one.
    """
    merged: dict[str, None] = {}
    for source in (granted, requested, defaults):
        for item in source:
            for scope in item.split():
                merged.setdefault(scope, None)
    return list(merged)
