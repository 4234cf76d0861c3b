"""What every part of the provider definition schema shares: frozen models, ids and `{name}` templates."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]

# `{name}` placeholders in URLs and parameter values.
TEMPLATE_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Placeholders the library fills itself; they are not tenant settings.
BUILTIN_VARIABLES = frozenset({"client_id"})


class FrozenSpec(BaseModel):
    """A part of a definition: immutable, and unknown keys are an error (a typo never passes silently)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def template_variables(text: str) -> set[str]:
    """The `{name}` placeholders used in a URL or parameter value."""
    return set(TEMPLATE_VARIABLE.findall(text))
