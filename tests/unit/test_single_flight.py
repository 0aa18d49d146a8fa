"""Single flight: concurrent loads of one key share one load."""

import asyncio

import pytest

from app.cache.singleflight import SingleFlight


async def test_concurrent_callers_share_the_leaders_load() -> None:
    flights: SingleFlight[int] = SingleFlight()
    release = asyncio.Event()
    loads = 0

    async def load() -> int:
        nonlocal loads
        loads += 1
        await release.wait()
        return 7

    callers = [asyncio.create_task(flights.run("k", load)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*callers)
    assert loads == 1
    assert sorted(results) == [(7, False)] + [(7, True)] * 4


async def test_followers_get_the_leaders_error() -> None:
    flights: SingleFlight[int] = SingleFlight()
    release = asyncio.Event()

    async def failing() -> int:
        await release.wait()
        raise RuntimeError("database down")

    callers = [asyncio.create_task(flights.run("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_a_cancelled_leader_does_not_cancel_its_followers() -> None:
    flights: SingleFlight[str] = SingleFlight()
    leader_started = asyncio.Event()

    async def hanging() -> str:
        leader_started.set()
        await asyncio.Event().wait()
        return "never"

    async def quick() -> str:
        return "loaded by the follower"

    leader = asyncio.create_task(flights.run("k", hanging))
    await leader_started.wait()
    follower = asyncio.create_task(flights.run("k", quick))
    await asyncio.sleep(0)
    leader.cancel()
    assert await follower == ("loaded by the follower", False)
    with pytest.raises(asyncio.CancelledError):
        await leader


async def test_callers_after_forget_start_a_new_load() -> None:
    flights: SingleFlight[int] = SingleFlight()
    first_release, loads = asyncio.Event(), []

    async def load() -> int:
        loads.append(1)
        number = len(loads)
        if number == 1:
            await first_release.wait()
        return number

    first = asyncio.create_task(flights.run("k", load))
    await asyncio.sleep(0)
    flights.forget(lambda key: key == "k")
    assert await flights.run("k", load) == (2, False)  # did not join the first load
    first_release.set()
    assert await first == (1, False)
