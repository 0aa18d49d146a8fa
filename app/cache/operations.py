"""What an operator runs beside the request path, built once per app in the lifespan:
warming (`warming.py`), prefetching (`prefetch.py`), the consistency verifier
(`verifier.py`) and the ring buffer of samples behind `/dashboard` (`samples.py`)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache.cached_repository import CacheLayer
from app.cache.prefetch import Prefetcher
from app.cache.samples import Sampler
from app.cache.service import CacheService
from app.cache.verifier import Verifier
from app.cache.warming import Warmer, WarmResult
from app.core.registry import Registry
from app.core.settings import Settings

logger = logging.getLogger(__name__)


class Operations:
    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        cache: CacheService,
        session_factory: async_sessionmaker[AsyncSession],
        layer: CacheLayer | None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.cache = cache
        self.layer = layer
        self.warmer = None if layer is None else Warmer(layer, registry, session_factory)
        self.prefetcher = (
            Prefetcher(layer, registry, session_factory, settings.cache_prefetch_concurrency)
            if layer is not None and settings.cache_prefetch
            else None
        )
        self.verifier = Verifier(
            cache,
            registry,
            session_factory,
            sample=settings.cache_verify_sample,
            interval=settings.cache_verify_interval_s,
        )
        self.sampler = Sampler(cache, registry, self.snapshot)
        self.last_warm: dict[str, WarmResult] = {}
        self._warm_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """The background tasks: the verifier, the samples, and the warm at start when
        configured."""
        self.verifier.start()
        self.sampler.start()
        if self.settings.cache_warm_on_start and self.warmer is not None:
            self._warm_task = asyncio.create_task(self._warm_on_start())

    async def warm(self, entity: str, limit: int) -> WarmResult:
        if self.warmer is None:
            raise RuntimeError("the cache is disabled")
        result = await self.warmer.warm(entity, limit)
        self.last_warm[entity] = result
        return result

    async def _warm_on_start(self) -> None:
        for entity in self.registry.names:
            try:
                await self.warm(entity, self.settings.cache_warm_limit)
            except Exception:  # a background task: logged, the service serves regardless
                logger.exception("cache warm at start failed for %s", entity)

    async def close(self) -> None:
        if self._warm_task is not None:
            self._warm_task.cancel()
            await asyncio.gather(self._warm_task, return_exceptions=True)
        await self.verifier.close()
        await self.sampler.close()
        if self.prefetcher is not None:
            await self.prefetcher.close()

    def snapshot(self) -> dict[str, Any]:
        return {
            "prefetch": (
                {"enabled": False}
                if self.prefetcher is None
                else {"enabled": True, **self.prefetcher.snapshot()}
            ),
            "verifier": self.verifier.snapshot(),
            "warm": {name: result.as_dict() for name, result in self.last_warm.items()},
        }
