"""The catalogue as the report reads it, held in memory and re-read periodically from the tables."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from grantline.providers.catalogue import Catalogue
from grantline.satisfaction.adapters.catalogue_tables import load_catalogue_view, seed_catalogue
from grantline.satisfaction.domain.catalogue import StaticCatalogue

log = logging.getLogger(__name__)


class CatalogueCache:
    """Every report reads ``view``; ``refresh`` swaps in a fresh copy (one reference assignment)."""

    def __init__(self) -> None:
        self.view = StaticCatalogue.of({}, [])

    async def seed_and_load(self, sessions: async_sessionmaker[AsyncSession], catalogue: Catalogue) -> None:
        """Upsert the shipped catalogue into the tables (keeping operators' flags), then load it."""
        async with sessions() as session:
            await seed_catalogue(session, catalogue)
            await session.commit()
        await self.refresh(sessions)

    async def refresh(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Re-read the tables."""
        async with sessions() as session:
            fresh = await load_catalogue_view(session)
        # Keep the same object while nothing changed: memoized reports are keyed on it.
        if fresh != self.view:
            self.view = fresh

    async def refresh_forever(self, sessions: async_sessionmaker[AsyncSession], every_seconds: float) -> None:
        """Re-read the tables every ``every_seconds`` (a background task)."""
        while True:
            await asyncio.sleep(every_seconds)
            try:
                await self.refresh(sessions)
            except Exception:
                log.warning("catalogue refresh failed; keeping the previous copy", exc_info=True)
