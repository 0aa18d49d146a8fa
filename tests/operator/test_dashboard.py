"""`/dashboard` in a real headless browser (Debian's chromium, driven by playwright): the
page loads with no console error and nothing from another origin, its charts hold the
samples whose last points are what `/cache/stats` says, the latency charts (p50/p99 of hits
and of misses per interval, and since the start) hold exactly the points of
`/cache/samples`, and a screenshot is saved.

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


LATENCY_CHARTS = {  # chart -> (key of the sample, {series: field})
    "hit_latency": ("latency", {"p50": "hit_p50_ms", "p99": "hit_p99_ms"}),
    "miss_latency": ("latency", {"p50": "miss_p50_ms", "p99": "miss_p99_ms"}),
    "load_latency": ("latency", {"p50": "load_p50_ms", "p99": "load_p99_ms"}),
    "latency_since_start": (
        "latency_since_start",
        {
            "hit p50": "hit_p50_ms",
            "hit p99": "hit_p99_ms",
            "miss p50": "miss_p50_ms",
            "miss p99": "miss_p99_ms",
        },
    ),
}


def charted(stats: dict[str, Any]) -> dict[str, Any]:
    """What the compared charts draw (errors may grow on a loaded machine: a background
    Redis call timing out counts one)."""
    counters = {e: {k: c[k] for k in CHARTED} for e, c in stats["entities"].items()}
    stale = {e: c["stale"] for e, c in stats["verifier"]["entities"].items()}
    return {"entities": counters, "stale": stale, "latency": stats["latency"]}


def points(page: Page, chart: str) -> set[tuple[str, int, float]]:
    """Every data point of a chart, as the page drew it: (series, sample index, value)."""
    drawn: list[dict[str, Any]] = page.eval_on_selector_all(
        f'svg[data-chart="{chart}"] circle',
        "els => els.map(e => ({series: e.dataset.series, index: +e.dataset.index,"
        " value: +e.dataset.value}))",
    )
    return {(p["series"], p["index"], p["value"]) for p in drawn}


def one_rendering(page: Page) -> dict[str, Any]:
    """Every point of every chart and the number of samples drawn, read in one script run
    (so from one rendering)."""
    rendered: dict[str, Any] = page.evaluate(
        """() => ({
            count: +document.body.dataset.samples,
            firstT: +document.body.dataset.firstT,
            points: [...document.querySelectorAll("svg[data-chart] circle")].map((e) => ({
                chart: e.closest("svg").dataset.chart, series: e.dataset.series,
                index: +e.dataset.index, value: +e.dataset.value,
            })),
        })"""
    )
    return rendered


def expected_points(
    samples: list[dict[str, Any]], entity: str, chart: str
) -> set[tuple[str, int, float]]:
    """The points a latency chart must hold for these samples (a null value: no point)."""
    key, series = LATENCY_CHARTS[chart]
    found = set()
    for index, sample in enumerate(samples):
        for label, field in series.items():
            value = sample[key][entity][field]
            if value is not None:
                found.add((label, index, value))
    return found


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


def last_of(drawn: set[tuple[str, int, float]]) -> dict[str, float]:
    """The last data point of each series."""
    last: dict[str, tuple[int, float]] = {}
    for series, index, value in drawn:
        if series not in last or index > last[series][0]:
            last[series] = (index, value)
    return {series: value for series, (_, value) in last.items()}


def last_points(page: Page, chart: str) -> dict[str, float]:
    """The last data point of each series of a chart, as the page drew it."""
    drawn = points(page, chart)
    assert drawn, f"chart {chart} has no data point"
    return last_of(drawn)


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
            rendered = one_rendering(page)  # the page redraws every second
            drawn_count, drawn_first_t = rendered["count"], rendered["firstT"]
            latency_drawn = {
                (entity, chart): {
                    (p["series"], p["index"], p["value"])
                    for p in rendered["points"]
                    if p["chart"] == f"{entity}.{chart}"
                }
                for entity in ("hero", "child", "story")
                for chart in LATENCY_CHARTS
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

    # The latency charts: exactly the samples' points (the page drew the first `drawn_count`
    # samples of the buffer, which is far from full, so their indices are the JSON's).
    samples = httpx.get(f"{service.url}/cache/samples").json()["samples"]
    assert samples[0]["t"] == drawn_first_t and len(samples) >= drawn_count
    for (entity, chart), drawn_points in latency_drawn.items():
        expected = expected_points(samples[:drawn_count], entity, chart)
        assert drawn_points == expected, (entity, chart)
    for entity in ("hero", "child", "story"):
        since_start = stats["latency"][entity]
        assert since_start["hit_requests"] > 0 and since_start["miss_requests"] > 0, entity
        assert last_of(latency_drawn[(entity, "latency_since_start")]) == {
            "hit p50": since_start["hit_p50_ms"],
            "hit p99": since_start["hit_p99_ms"],
            "miss p50": since_start["miss_p50_ms"],
            "miss p99": since_start["miss_p99_ms"],
        }, entity
        for chart in ("hit_latency", "miss_latency"):  # the traffic's intervals are drawn
            assert {label for label, _, _ in latency_drawn[(entity, chart)]} == {"p50", "p99"}
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
