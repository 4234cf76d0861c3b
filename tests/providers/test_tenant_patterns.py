"""Tenant patterns run on RE2: a backtracking pattern answers at once; unsupported ones are refused."""

import time

import pytest

from grantline.providers.authorize import SettingsError, resolve_settings
from grantline.providers.catalogue import CatalogueError, parse_definition
from grantline.providers.tenant_patterns import MAX_VALUE_LENGTH, PatternError, compile_pattern, value_matches

# Python's `re` needs about 2**26 steps (seconds) to fail this match; RE2 needs microseconds.
EVIL_PATTERN = "(a+)+b"
EVIL_VALUE = "a" * 28


def shop_provider(pattern: str) -> dict:
    return {
        "id": "acme",
        "name": "Acme",
        "category": "crm",
        "auth": "oauth2",
        "settings": {"shop": {"label": "Shop", "pattern": pattern}},
        "oauth": {
            "authorize_url": "https://{shop}.acme.example/authorize",
            "token_url": "https://acme.example/t",
        },
    }


def test_a_backtracking_setting_pattern_answers_quickly():
    definition = parse_definition(shop_provider(EVIL_PATTERN))
    started = time.perf_counter()
    with pytest.raises(SettingsError, match="does not match"):
        resolve_settings(definition, {"shop": EVIL_VALUE})
    assert time.perf_counter() - started < 0.5


def test_a_backtracking_pattern_still_matches_what_it_should():
    assert value_matches(EVIL_PATTERN, "aaab")
    assert not value_matches(EVIL_PATTERN, EVIL_VALUE)


@pytest.mark.parametrize("pattern", [r"(a)\1", r"foo(?=bar)", r"(?<!x)y"])
def test_patterns_re2_cannot_run_are_refused_with_a_clear_problem(pattern):
    with pytest.raises(PatternError, match="RE2 syntax"):
        compile_pattern(pattern)
    with pytest.raises(CatalogueError, match=r"settings\.shop\.pattern: pattern does not compile"):
        parse_definition(shop_provider(pattern))


def test_an_api_key_field_pattern_re2_cannot_run_is_refused():
    definition = {
        "id": "keyed",
        "name": "Keyed",
        "category": "crm",
        "auth": "api_key",
        "api_key": {"fields": [{"id": "api_key", "label": "Key", "pattern": r"(k)\1"}]},
    }
    with pytest.raises(CatalogueError, match="pattern does not compile"):
        parse_definition(definition)


def test_an_over_long_value_is_refused_before_matching():
    assert value_matches(".*", "x" * MAX_VALUE_LENGTH)
    assert not value_matches(".*", "x" * (MAX_VALUE_LENGTH + 1))


def test_an_over_long_pattern_is_refused():
    with pytest.raises(PatternError, match="longer than"):
        compile_pattern("a" * 1001)
