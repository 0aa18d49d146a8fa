"""Hooks on one entity's database loads, for tests that hold a load at a chosen moment."""

from collections.abc import Callable
from typing import Any

import pytest

from app.core.repository import SQLAlchemyRepository

Wrap = Callable[[Callable[..., Any]], Callable[..., Any]]


def patch_loads(
    monkeypatch: pytest.MonkeyPatch, wrap: Wrap, *methods: str, entity: str = "hero"
) -> None:
    """Replace the repository's `methods` (e.g. "get", "list") by `wrap(original)` for the
    rows of `entity`; the other entities' loads run unchanged."""
    for name in methods:
        original = getattr(SQLAlchemyRepository, name)
        wrapped = wrap(original)

        async def dispatch(
            self: SQLAlchemyRepository,
            *args: Any,
            _original: Any = original,
            _wrapped: Any = wrapped,
            **kwargs: Any,
        ) -> Any:
            call = _wrapped if self.spec.name == entity else _original
            return await call(self, *args, **kwargs)

        monkeypatch.setattr(SQLAlchemyRepository, name, dispatch)
