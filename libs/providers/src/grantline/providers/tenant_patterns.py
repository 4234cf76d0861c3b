"""Regular expressions written by tenants (setting and API-key field patterns), run in linear time.

Python's `re` backtracks: a tenant pattern such as `(a+)+b` against a few dozen characters holds
the event loop for seconds and stalls every other tenant. RE2 (google-re2) matches in time linear
in the input and refuses the constructs that need backtracking (back-references, look-around), so
such a pattern is refused when the definition is saved rather than run.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

# A pattern is a format check, never a program: keep the text and the compiled automaton small.
MAX_PATTERN_LENGTH = 1_000
_MAX_PROGRAM_MEMORY = 1 << 20
# Longer values are refused before any matching (settings are shop names, ids, regions; API keys
# are rarely over a few hundred characters).
MAX_VALUE_LENGTH = 4_096


class PatternError(ValueError):
    """A tenant pattern that RE2 cannot compile, or that is too long."""


def _options() -> Any:
    options = re2.Options()
    options.max_mem = _MAX_PROGRAM_MEMORY
    # RE2 otherwise logs every refused pattern to stderr, outside our logging.
    options.log_errors = False
    return options


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """Compile a tenant pattern with RE2; PatternError says why it is refused."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"pattern is longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(pattern, _options())
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise PatternError(
            f"pattern does not compile: {reason} (patterns use RE2 syntax: no back-references or look-around)"
        ) from None


def value_matches(pattern: str, value: str) -> bool:
    """Whether the whole value matches the tenant pattern (False for an over-long value)."""
    if len(value) > MAX_VALUE_LENGTH:
        return False
    return compile_pattern(pattern).fullmatch(value) is not None
