"""The guard's owed invalidations, on a stand-in for Redis that records what is sent (the
resilience tests show the same against real Redis): owed work is sent again, oldest first,
before the next call; an error keeps the rest owed; epochs move only for invalidations the
guard had to forget (more than MAX_OWED) or when Redis lost data. Back from an outage the
half-open probe applies the outbox first and moves no epoch, unless the outbox could not be
read. And the outbox row's payload is the plan itself."""

from typing import Any, cast

from redis.asyncio import Redis

from app.cache import guard as guard_module
from app.cache.breaker import CircuitBreaker
from app.cache.guard import FAILED, RedisGuard
from app.cache.invalidation import InvalidationPlan
from app.cache.outbox import decode, encode
from app.cache.service import Marker
from app.cache.stats import CacheStats

EPOCHS = {"hero": ("tales:epoch:hero",), "story": ("tales:epoch:story",)}  # keys per entity


class Sent:
    """What reached 'Redis': replays and epoch moves, in order."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.fail = False

    def replay(self, name: str) -> Any:
        async def send(_redis: object) -> None:
            if self.fail:
                raise ConnectionError("down")
            self.calls.append(name)

        return send

    async def move_epochs(self, _redis: object, epochs: list[str]) -> None:
        self.calls.append(("epochs", sorted(epochs)))

    async def call(self, _redis: object) -> str:
        self.calls.append("call")
        return "ok"


ALL_EPOCHS = ("epochs", sorted(k for keys in EPOCHS.values() for k in keys))


def make_guard(sent: Sent, *, threshold: int = 100) -> RedisGuard:
    return RedisGuard(
        cast("Redis", object()),  # never called: the calls are the test's
        timeout=1.0,
        breaker=CircuitBreaker(failure_threshold=threshold, cooldown_seconds=0.0),
        stats=CacheStats(list(EPOCHS)),
        epoch_keys=EPOCHS,
        move_epochs=sent.move_epochs,
        secrets=(),
    )


async def fail(_redis: object) -> None:
    raise ConnectionError("down")


async def outage_then_probe(guard: RedisGuard, sent: Sent, outbox_readable: bool) -> list[Any]:
    """Open the breaker (one failure), then let its half-open probe (no cool-down) run with
    an outbox whose `recover` says whether it could be read; what reached Redis, in order."""

    async def recover(_redis: object) -> bool:
        sent.calls.append("outbox applied")
        return outbox_readable

    guard.recover = recover
    assert await guard.run("hero", fail) is FAILED
    assert await guard.run("hero", sent.call) == "ok"
    await guard.close()
    return sent.calls


async def test_owed_invalidations_are_sent_again_in_order_before_the_next_call() -> None:
    sent = Sent()
    guard = make_guard(sent)
    guard.owe(sent.replay("first"), ["hero"])
    guard.owe(sent.replay("second"), ["story"])
    assert guard.owed == 2

    assert await guard.run("hero", sent.call) == "ok"

    assert sent.calls == ["first", "second", "call"]  # no epoch moved
    assert guard.owed == 0
    await guard.close()


async def test_an_error_keeps_them_owed_and_fails_the_call() -> None:
    sent = Sent()
    guard = make_guard(sent)
    guard.owe(sent.replay("first"), ["hero"])
    sent.fail = True

    assert await guard.run("hero", sent.call) is FAILED
    assert guard.owed == 1
    sent.fail = False
    assert await guard.run("hero", sent.call) == "ok"
    assert sent.calls == ["first", "call"]
    await guard.close()


async def test_only_forgotten_invalidations_move_epochs(monkeypatch: Any) -> None:
    monkeypatch.setattr(guard_module, "MAX_OWED", 2)
    sent = Sent()
    guard = make_guard(sent)
    guard.owe(sent.replay("a"), ["story"])
    guard.owe(sent.replay("b"), ["hero"])
    guard.owe(sent.replay("c"), ["hero"])  # "a" is forgotten: the story epoch moves instead

    assert await guard.run("hero", sent.call) == "ok"
    assert sent.calls == [("epochs", ["tales:epoch:story"]), "b", "c", "call"]
    await guard.close()


async def test_redis_that_lost_data_moves_every_epoch() -> None:
    sent = Sent()
    guard = make_guard(sent)
    guard.data_lost()

    assert await guard.run("hero", sent.call) == "ok"
    assert sent.calls == [ALL_EPOCHS, "call"]
    await guard.close()


async def test_back_from_an_outage_the_outbox_is_applied_first_and_no_epoch_moves() -> None:
    sent = Sent()
    calls = await outage_then_probe(make_guard(sent, threshold=1), sent, outbox_readable=True)
    assert calls == ["outbox applied", "call"]


async def test_back_from_an_outage_an_unreadable_outbox_moves_every_epoch() -> None:
    sent = Sent()
    calls = await outage_then_probe(make_guard(sent, threshold=1), sent, outbox_readable=False)
    assert calls == ["outbox applied", ALL_EPOCHS, "call"]


def test_the_outbox_payload_is_the_plan() -> None:
    plan = InvalidationPlan(
        markers=[Marker("tales:hero:1", 3, 3600), Marker("tales:story:2", 9007199254740991, 60)],
        counters={"tales:gen:hero:all", "tales:gen:hero:lang:en"},
        entities={"hero", "story"},
    )
    assert decode(encode(plan)) == plan
