"""In-process single flight: concurrent loads of the same key share one database load."""

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._flights: dict[Hashable, asyncio.Future[T]] = {}

    async def run(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Returns (result, shared): shared is True for callers that joined another's load.

        If the leader is cancelled, followers do not inherit the cancellation: they load
        themselves.
        """
        flight = self._flights.get(key)
        if flight is not None:
            try:
                return await asyncio.shield(flight), True
            except asyncio.CancelledError:
                if not flight.cancelled():
                    raise
                return await self.run(key, load)
        flight = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        try:
            result = await load()
        except asyncio.CancelledError:
            flight.cancel()
            raise
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # retrieved: followers may be none
            raise
        else:
            flight.set_result(result)
            return result, False
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]

    def forget(self, match: Callable[[Hashable], bool]) -> None:
        """Callers arriving from now on start a new load instead of joining these (a write
        was acknowledged since they began); callers already waiting keep their result."""
        for key in [key for key in self._flights if match(key)]:
            del self._flights[key]
