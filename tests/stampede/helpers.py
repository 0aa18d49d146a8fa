"""Shared by the stampede and observability tests: counting the statements an app sends to
the database, and holding database loads until the concurrent requests all overlap."""

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import event

from tests.support.loads import patch_loads

#: A held load goes on after this long even if its condition never came true.
GATE_TIMEOUT = 10.0

HEROES = "/api/v1/heroes"
HERO = {"name": "Luna", "age": 7, "gender": "female", "language": "en"}


def _matches(value: object, wanted: object) -> bool:
    return value == wanted or str(value) == str(wanted)


class StatementLog:
    """Every statement executed on the engines it listens to, with its parameters."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def _record(self, _conn, _cursor, statement, parameters, _context, _executemany) -> None:
        params = parameters if isinstance(parameters, tuple | list) else (parameters,)
        self.statements.append((statement, tuple(params)))

    @contextmanager
    def listening(self, *apps: FastAPI) -> Iterator["StatementLog"]:
        engines = [app.state.services.engine.sync_engine for app in apps]
        for engine in engines:
            event.listen(engine, "before_cursor_execute", self._record)
        try:
            yield self
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", self._record)

    def selects(self, table: str, parameter: object, *, where: str = "") -> list[str]:
        """SELECTs from `table` that pass `parameter` (asyncpg: positional parameters)."""
        return [
            statement
            for statement, params in self.statements
            if statement.lstrip().upper().startswith("SELECT")
            and f"FROM {table}" in statement
            and where in statement
            and any(_matches(p, parameter) for p in params)
        ]


class LoadGate:
    """Holds every hero database load, after its SELECT returned, until a condition holds,
    e.g. "all the concurrent requests have looked the key up": then every request is waiting
    when the load returns, however slowly the machine got them there, and none comes late.
    Without stampede protection each of them would have sent its own SELECT by then."""

    def __init__(self) -> None:
        self.condition: Callable[[], bool] = lambda: True

    def hold_until(self, condition: Callable[[], bool]) -> None:
        self.condition = condition

    async def passed(self) -> None:
        deadline = time.monotonic() + GATE_TIMEOUT
        while not self.condition() and time.monotonic() < deadline:
            await asyncio.sleep(0.002)

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        async def held(*args: Any, **kwargs: Any) -> Any:
            result = await original(*args, **kwargs)
            await self.passed()
            return result

        return held

    def install(self, monkeypatch: pytest.MonkeyPatch) -> "LoadGate":
        patch_loads(monkeypatch, self.wrap, "get", "list")
        return self


def lookups(*apps: FastAPI, entity: str = "hero") -> int:
    """Cache lookups (hits and misses) of `entity` the apps have made so far."""
    return sum(
        stats.hits + stats.misses
        for stats in (app.state.services.cache.stats[entity] for app in apps)
    )
