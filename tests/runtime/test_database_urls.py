"""The libpq form of a database URL (runtime.db.urls): what the psycopg-only path connects with."""

import pytest
from sqlalchemy.engine import make_url

from grantline.runtime.db.urls import libpq_url

URLS = [
    "postgresql://grantline:p%40ss@db.internal:5432/grantline?sslmode=verify-full",
    "postgresql+psycopg://grantline@127.0.0.1/grantline",
    "postgres://u@h/d",
    "postgresql+psycopg2://a:b@c/d?host=/var/run/postgresql",
]


@pytest.mark.parametrize("url", URLS)
def test_the_libpq_url_is_the_one_sqlalchemy_would_render(url: str) -> None:
    ours = make_url(libpq_url(url))
    theirs = make_url(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    assert ours == theirs and libpq_url(url).startswith("postgresql://")


def test_anything_else_is_refused_in_a_sentence() -> None:
    with pytest.raises(ValueError, match="starts with postgresql://"):
        libpq_url("mysql://u@h/d")
