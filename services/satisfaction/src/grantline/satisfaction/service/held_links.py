"""Use case: give each held run a connect link per missing requirement (Aitroop's path B).

The runner shows them in the conversation ("Connect GitHub"); once the user connects, the held run
is admitted by itself (``resume_held_runs``). Links are minted by the gateway, which owns connect
sessions; each is scoped to the providers that would satisfy its requirement.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from grantline.contract.connect_links import ConnectLinkReply, ConnectLinkRequest
from grantline.contract.runs import ConnectLink, RequirementStatus, RunHeld
from grantline.satisfaction.domain.catalogue import CatalogueView
from grantline.satisfaction.domain.connect_links import providers_to_connect


class LinkMinter(Protocol):
    async def mint(self, request: ConnectLinkRequest) -> ConnectLinkReply | None: ...


async def with_connect_links(
    held: RunHeld, user_id: str, catalogue: CatalogueView, minter: LinkMinter
) -> RunHeld:
    """``held`` with a link for each missing requirement the gateway minted one for."""
    wanted = [(status, providers_to_connect(status, catalogue)) for status in held.missing]
    wanted = [(status, providers) for status, providers in wanted if providers]
    if not wanted:
        return held
    replies = await asyncio.gather(
        *(
            minter.mint(
                ConnectLinkRequest(
                    tenant_id=held.tenant_id, user_id=user_id, providers=providers, run_id=held.run_id
                )
            )
            for _, providers in wanted
        )
    )
    links = [
        _link(status, reply) for (status, _), reply in zip(wanted, replies, strict=True) if reply is not None
    ]
    return held.model_copy(update={"connect_links": links}) if links else held


def _link(status: RequirementStatus, reply: ConnectLinkReply) -> ConnectLink:
    return ConnectLink(
        requirement_type=status.type,
        requirement_id=status.id,
        providers=reply.providers,
        url=reply.url,
        expires_at=reply.expires_at,
    )
