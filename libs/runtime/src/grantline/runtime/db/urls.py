"""Database URLs for the two ways a service reaches Postgres: SQLAlchemy's and libpq's (psycopg's).

Settings hold one URL; SQLAlchemy wants a driver in its scheme (``postgresql+psycopg://``), libpq
wants none. Kept apart from the engine so the psycopg-only path loads no SQLAlchemy.
"""

from __future__ import annotations

import re

_SCHEME = re.compile(r"^(postgresql|postgres)(\+[A-Za-z0-9_]+)?://")


def libpq_url(url: str) -> str:
    """The URL with a plain ``postgresql://`` scheme (the rest as given, for libpq to read)."""
    match = _SCHEME.match(url)
    if match is None:
        raise ValueError("a database URL starts with postgresql:// (or postgresql+psycopg://)")
    return "postgresql://" + url[match.end() :]
