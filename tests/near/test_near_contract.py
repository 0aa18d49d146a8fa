"""A near hit keeps the API contract of the full path: a malformed If-None-Match is the same
422 (the near front does not answer it from its copy)."""

import pytest

from tests.near.conftest import HERO, HEROES, NearInstance, near_copy

MALFORMED = ["abc", "", '"a" "b"', "W/abc", '"a",,"b"']


@pytest.mark.parametrize("value", MALFORMED)
async def test_a_malformed_if_none_match_on_a_near_copy_is_the_full_paths_422(
    near_instance: NearInstance, value: str
) -> None:
    async with near_instance() as (app, client):
        created = await client.post(HEROES, json=HERO)
        path = f"{HEROES}/{created.json()['id']}"
        await near_copy(app, client, path)  # the path is answered from the near cache now

        near = await client.get(path, headers={"If-None-Match": value})
        async with near_instance(cache_near_enabled=False) as (_plain_app, plain):
            full = await plain.get(path, headers={"If-None-Match": value})

    assert near.status_code == full.status_code == 422
    assert near.json() == full.json()
    assert near.json()["detail"][0]["loc"] == ["header", "if-none-match"]
