"""A list counter that disappears (evicted, expired, Redis restarted without it) restarts at
a fresh random value, never at one pages were already stored under."""

from tests.api import payloads
from tests.cache.conftest import Api


async def test_a_scope_counter_lost_after_a_write_does_not_bring_back_the_older_page(
    api: Api, redis
) -> None:
    hero = await api.create("hero", payloads.hero(name="Old", language="en"))
    before = await api.page("hero", language="en")  # cached, and read back as a hit
    assert [item["name"] for item in before["items"]] == ["Old"]

    await api.patch("hero", hero["id"], {"name": "New"})  # moves gen:{hero.pages}:lang:en
    assert redis.delete("tales:gen:{hero.pages}:lang:en") == 1  # lost, as if evicted

    after = await api.list("hero", language="en")
    assert [item["name"] for item in after["items"]] == ["New"]
