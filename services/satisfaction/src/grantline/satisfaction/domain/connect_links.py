"""Which providers a connect link for a missing requirement offers (pure)."""

from __future__ import annotations

from grantline.contract.runs import RequirementStatus
from grantline.satisfaction.domain.catalogue import CatalogueView


def providers_to_connect(status: RequirementStatus, catalogue: CatalogueView) -> list[str]:
    """The providers that would satisfy ``status``: its available definitions' providers, in order.

    Empty for an unknown or disabled requirement: no link can help there.
    """
    providers = [catalogue.provider_of(definition) or definition for definition in status.available]
    return list(dict.fromkeys(providers))
