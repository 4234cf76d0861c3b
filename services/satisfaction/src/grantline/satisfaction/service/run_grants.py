"""Use case: the run grant that goes with an admission (claims in grantline.contract.run_grants).

A grant names the providers the run's requirements (with its skills and stages) name, whatever
the user has connected: a category names every provider in it, since any of them may satisfy it.
Scopes: those the requirements ask for; a provider named once without scopes is not limited.
"""

from __future__ import annotations

from collections.abc import Sequence

from grantline.contract.run_grants import RunGrant
from grantline.runtime.run_grants import RunGrantSigner, RunGrantVerifier
from grantline.satisfaction.domain.catalogue import CatalogueView
from grantline.satisfaction.domain.requirements import Requirement


def granted_providers(
    catalogue: CatalogueView, requirements: Sequence[Requirement]
) -> dict[str, tuple[str, ...]]:
    """``{provider: scopes}`` a run with ``requirements`` may resolve (no scopes: not limited)."""
    scopes: dict[str, set[str] | None] = {}
    for requirement in requirements:
        definitions = (
            [requirement.id] if requirement.type == "specific" else catalogue.definitions_in(requirement.id)
        )
        for definition in definitions:
            provider = catalogue.provider_of(definition) or definition
            wanted = set(requirement.scopes) if requirement.scopes else None
            if provider not in scopes:
                scopes[provider] = wanted
            elif scopes[provider] is not None:
                known = scopes[provider]
                scopes[provider] = None if wanted is None or known is None else known | wanted
    return {provider: tuple(sorted(found or ())) for provider, found in sorted(scopes.items())}


class RunGrantIssuer:
    """Signs the grant of an admitted run, and renews the grant of a run still in progress."""

    def __init__(self, signer: RunGrantSigner, verifier: RunGrantVerifier) -> None:
        self._signer = signer
        self.verifier = verifier

    def renewed(self, grant: RunGrant) -> str:
        """A grant for the same run, user, app, providers and scopes, with a fresh expiry."""
        return self._signer.issue(
            tenant_id=grant.tenant_id,
            run_id=grant.run_id,
            user_id=grant.user_id,
            app_id=grant.app_id,
            providers=grant.providers,
            is_test=grant.is_test,
        )

    def grant_for(
        self,
        catalogue: CatalogueView,
        requirements: Sequence[Requirement],
        *,
        tenant_id: str,
        run_id: str,
        user_id: str,
        app_id: str,
        is_test: bool,
    ) -> str:
        """The signed grant of a run admitted with ``requirements``."""
        return self._signer.issue(
            tenant_id=tenant_id,
            run_id=run_id,
            user_id=user_id,
            app_id=app_id,
            providers=granted_providers(catalogue, requirements),
            is_test=is_test,
        )
