"""`/dashboard` in a real headless browser (Debian's chromium, driven by playwright): the
page loads with no console error and nothing from another origin, its charts hold the
samples whose last points are what `/cache/stats` says, and a screenshot is saved.

`make test` installs chromium (scripts/ensure-test-services.sh); without it this test fails
rather than skip.
"""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from tests.api import payloads
from tests.api.helpers import url
from tests.support.redis_server import RedisServer
from tests.support.service import ServiceProcess

CHROMIUM = Path("/usr/bin/chromium")
RENDER_TIMEOUT_MS = 15_000
SAMPLE_WAIT_S = 1.5  # more than one sample interval (1 s)


@pytest.fixture
def service(
    postgresql_database_url: str, clean_database: None, clean_redis: RedisServer, tmp_path: Path
) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        postgresql_database_url,
        clean_redis.url,
        tmp_path / "service.log",
        CACHE_VERIFY_INTERVAL_S="0.5",
    )
    try:
        process.wait_healthy()
        yield process
    finally:
        process.stop()


def traffic(base: str) -> None:
    """Hits and misses of every entity, writes (invalidations), a prefetch."""
    with httpx.Client(base_url=base, timeout=10) as http:
        hero = http.post(url("hero"), json=payloads.hero()).json()
        child = http.post(url("child"), json=payloads.child()).json()
        story = http.post(url("story"), json=payloads.story_of_child(child["id"])).json()
        for entity, body in (("hero", hero), ("child", child), ("story", story)):
            for _ in range(3):
                assert http.get(url(entity, body["id"])).status_code == 200
            assert http.get(url(entity)).status_code == 200
        assert http.patch(url("hero", hero["id"]), json={"age": 4}).status_code == 200
        assert http.get(url("hero", hero["id"])).status_code == 200


CHARTED = ("hits", "misses", "hit_rate", "database_loads", "invalidations")


def charted(stats: dict[str, Any]) -> dict[str, Any]:
    """What the compared charts draw (errors may grow on a loaded machine: a background
    Redis call timing out counts one)."""
    counters = {e: {k: c[k] for k in CHARTED} for e, c in stats["entities"].items()}
    stale = {e: c["stale"] for e, c in stats["verifier"]["entities"].items()}
    return {"entities": counters, "stale": stale}


def quiet_stats(base: str) -> dict[str, Any]:
    """/cache/stats once nothing moves any more (the prefetch scheduled by the traffic done)."""
    deadline = time.monotonic() + RENDER_TIMEOUT_MS / 1000
    previous = httpx.get(f"{base}/cache/stats").json()
    while time.monotonic() < deadline:
        time.sleep(SAMPLE_WAIT_S)
        current = httpx.get(f"{base}/cache/stats").json()
        if charted(current) == charted(previous) and current["prefetch"]["running"] == 0:
            return current
        previous = current
    pytest.fail("the cache statistics kept moving without traffic")


def last_points(page: Page, chart: str) -> dict[str, float]:
    """The last data point of each series of a chart, as the page drew it."""
    points: list[dict[str, Any]] = page.eval_on_selector_all(
        f'svg[data-chart="{chart}"] circle',
        "els => els.map(e => ({series: e.dataset.series, index: +e.dataset.index,"
        " value: +e.dataset.value}))",
    )
    assert points, f"chart {chart} has no data point"
    last: dict[str, tuple[int, float]] = {}
    for point in points:
        if point["series"] not in last or point["index"] > last[point["series"]][0]:
            last[point["series"]] = (point["index"], point["value"])
    return {series: value for series, (_, value) in last.items()}


def test_dashboard_in_a_headless_browser(service: ServiceProcess, tmp_path: Path) -> None:
    assert CHROMIUM.exists(), "chromium is missing: run scripts/ensure-test-services.sh"
    traffic(service.url)
    stats = quiet_stats(service.url)  # the next samples hold these counts
    stats_taken = time.time()

    errors: list[str] = []
    foreign: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on(
                "request",
                lambda r: None if r.url.startswith(service.url) else foreign.append(r.url),
            )
            page.goto(f"{service.url}/dashboard")
            page.wait_for_function(
                f"() => Number(document.body.dataset.lastT || 0) > {stats_taken}",
                timeout=RENDER_TIMEOUT_MS,
            )
            drawn = {
                entity: {
                    name: last_points(page, f"{entity}.{name}")
                    for name in ("hit_rate", "database_loads", "invalidations", "stale")
                }
                for entity in ("hero", "child", "story")
            }
            nines_text = page.text_content("#nines")
            screenshot = tmp_path / "dashboard.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()

    assert errors == []
    assert foreign == []
    assert charted(httpx.get(f"{service.url}/cache/stats").json()) == charted(stats)
    for entity, charts in drawn.items():
        counters = stats["entities"][entity]
        assert charts["hit_rate"] == {"hit rate": counters["hit_rate"]}, entity
        assert charts["database_loads"] == {"loads": counters["database_loads"]}, entity
        assert charts["invalidations"] == {"invalidations": counters["invalidations"]}, entity
        assert charts["stale"]["stale"] == stats["verifier"]["entities"][entity]["stale"]
    assert stats["entities"]["hero"]["hits"] > 0 and stats["entities"]["hero"]["misses"] > 0
    assert nines_text and "nines" in nines_text
    assert screenshot.stat().st_size > 10_000
    print(f"dashboard screenshot: {screenshot}")


def test_dashboard_assets_are_served_by_the_app_with_a_strict_policy(
    service: ServiceProcess,
) -> None:
    page = httpx.get(f"{service.url}/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text
    for asset, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        response = httpx.get(f"{service.url}/dashboard/{asset}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(kind)
        assert "https://" not in response.text
    samples = httpx.get(f"{service.url}/cache/samples").json()
    assert samples["interval_s"] == 1.0 and samples["capacity"] == 300
    assert samples["samples"], "no sample taken since start"
