"""Whether a connecting client gets a runner identity: the rules, with no I/O.

The reason for a refusal goes to runner-auth's log and, in general terms, to the server (which logs
it too); it never includes the password the client sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from grantline.contract.runner_identities import RUNNER_ID
from grantline.runner_auth.domain.runner import Runner

# What the server is told for every refusal: a client learns nothing about which check failed.
REFUSED = "not authorized"


@dataclass(frozen=True)
class Refusal:
    reason: str


def shape_refusal(user: str, password: str) -> Refusal | None:
    """A refusal when the CONNECT cannot be a runner's at all (checked before any lookup)."""
    if not user:
        return Refusal("no user name")
    if not RUNNER_ID.match(user):
        return Refusal("user name is not a runner id")
    if not password:
        return Refusal("no password")
    return None


def decide(runner: Runner | None, password: str) -> Refusal | None:
    """None when ``runner`` exists, is not revoked and ``password`` is its secret."""
    if runner is None:
        return Refusal("unknown runner")
    if not runner.secret_matches(password):
        return Refusal("wrong secret")
    if runner.revoked:
        return Refusal("runner revoked")
    return None
