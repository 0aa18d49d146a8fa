"""The near cache's memory: bounded by bytes, least recently used first, dropped by the
Redis keys its entries depend on, expired with the Redis entry they copy."""

import time

from app.cache.near.store import ENTRY_OVERHEAD_BYTES, NearEntry, NearStore

MIB = 1024 * 1024


def entry(body: bytes, *deps: bytes, expires_in: float = 60.0) -> NearEntry:
    return NearEntry(
        entity="hero",
        route="/api/v1/heroes/{entity_id}",
        etag='"x.1"',
        start={"type": "http.response.start", "status": 200, "headers": []},
        body=body,
        not_modified=None,
        deps=deps,
        expires=time.monotonic() + expires_in,
    )


def test_it_never_holds_more_than_its_bound_and_evicts_the_least_recently_used() -> None:
    store = NearStore(max_bytes=MIB)
    body = b"x" * (100 * 1024)
    for n in range(9):  # about 900 KiB: all fit
        assert store.put(b"t%d" % n, entry(body, b"k%d" % n))
    assert store.evictions == 0
    assert store.get(b"t0") is not None  # t0 used again: t1 is now the oldest
    for n in range(9, 30):
        assert store.put(b"t%d" % n, entry(body, b"k%d" % n))
        assert store.bytes <= store.max_bytes
        if n == 10:
            assert store.get(b"t1") is None  # the oldest, not t0
            assert store.get(b"t0") is not None
    assert store.evictions >= 20
    kept = [n for n in range(30) if store.get(b"t%d" % n) is not None]
    assert store.bytes == sum(len(b"t%d" % n) + len(body) + ENTRY_OVERHEAD_BYTES for n in kept)


def test_an_entry_larger_than_a_quarter_of_the_bound_is_not_kept() -> None:
    store = NearStore(max_bytes=MIB)
    assert not store.put(b"big", entry(b"x" * (MIB // 4 + 1)))
    assert store.get(b"big") is None
    assert (store.rejected, store.bytes) == (1, 0)


def test_an_invalidated_key_drops_every_entry_depending_on_it() -> None:
    store = NearStore(max_bytes=MIB)
    store.put(b"/heroes/1?", entry(b"{}", b"tales:hero:1", b"tales:epoch:hero"))
    store.put(b"/heroes?language=en", entry(b"{}", b"tales:gen:hero:lang:en", b"tales:epoch:hero"))
    store.put(b"/children/2?", entry(b"{}", b"tales:child:2", b"tales:epoch:child"))
    assert store.drop([b"tales:hero:1"]) == 1
    assert store.get(b"/heroes/1?") is None and store.get(b"/heroes?language=en") is not None
    assert store.drop([b"tales:epoch:hero"]) == 1  # an epoch move drops all of the entity
    assert len(store) == 1 and store.get(b"/children/2?") is not None
    store.clear()
    assert (len(store), store.bytes) == (0, 0)


def test_an_entry_expires_with_the_redis_entry_it_copies() -> None:
    store = NearStore(max_bytes=MIB)
    store.put(b"t", entry(b"{}", b"k", expires_in=-0.001))
    assert store.get(b"t") is None
    assert store.bytes == 0
