"""The health page in a real browser: served as a static file, rendered by headless Chromium.

Skips, saying why, where Chromium or its driver is missing (``.ci/run`` installs them).
Nothing is fetched from outside: the page is served from a loopback server, the browser is
started with its background networking off, and Selenium is given the driver's path so it
never looks for one to download.

Three pages: a small library (every pattern drawn, the legend highlights, the explorer), a
large one built in memory (the community map and the explorer, no per-pattern drawing) and,
when ``GARDENER_HEALTH_LIBRARY`` names a library folder, that library as ``gardener health``
writes it: its size, load time and a screenshot are printed (docs/health.md quotes the
3,600-pattern library's: ``GARDENER_HEALTH_LIBRARY=/tmp/scale3600/lib pytest
tests/test_health_browser.py -k given -s``).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graph_library import Spec, load
from test_health_page import large_graph
from typer.testing import CliRunner

from gardener.cli.main import app
from gardener.graph import health, page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
SCREENSHOTS = Path("/tmp") / "gardener-health-screens"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="chromium and chromedriver not installed (apt-get install chromium "
           "chromium-driver): the browser check of the health page is skipped")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve(site: Path) -> Iterator[str]:
    """A loopback server for the folder, at the address it gives."""
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--disable-sync", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def no_errors(driver: Any) -> None:
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def explore(driver: Any) -> None:
    """Choose the largest community's disc, then its first pattern: its members are listed
    and the pattern's neighbourhood drawn, a circle per neighbour (up to the ring's 48)."""
    run = driver.execute_script
    driver.find_element("css selector", "#community-map g.cnode[data-node='0']").click()
    listed = run("return document.querySelectorAll('#community li button').length")
    assert listed > 0
    driver.find_element("css selector", "#community li button").click()
    slug = run("return document.getElementById('neighbourhood').getAttribute('data-pattern')")
    assert slug
    drawn = run("return document.querySelectorAll('#neighbourhood circle.nnode').length")
    out_in = run("return document.querySelectorAll('#links-out li, #links-in li').length")
    assert drawn >= 2 and out_in >= 1  # the pattern and at least one neighbour
    assert run("return location.hash") == "#" + slug


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A library of three communities, its health page, and a loopback server for it."""
    specs = []
    for theme in ("water", "code", "care"):
        slugs = [f"{theme}-{i}" for i in range(4)]
        specs += [Spec(s, human={"complementary": [slugs[(i + 1) % 4]]},
                       links=[(slugs[(i + 2) % 4], "alternatives", 0.8), ("missing", "tools", 0.6)],
                       communities=[(theme, theme.title(), 0.9)])
                  for i, s in enumerate(slugs)]
    lib = tmp_path / "lib"
    load(lib, specs)
    site = tmp_path / "site"
    site.mkdir()
    result = CliRunner().invoke(app, ["health", str(lib), "--html", str(site / "index.html")])
    assert result.exit_code == 0, result.output
    with serve(site) as base:
        yield f"{base}/index.html", len(specs)


def test_the_page_renders_the_graph_and_charts_without_errors(
        served: tuple[str, int], browser: Any) -> None:
    url, patterns = served
    driver = browser
    driver.get(url)
    count = driver.execute_script
    assert count("return document.querySelectorAll('#graph circle.node').length") == patterns
    assert count("return document.querySelectorAll('#graph line.edge').length") == 24
    status = driver.find_element("id", "graph-status").text
    assert status == f"{patterns} patterns, 24 links drawn"  # the inline script ran
    bars = count("return document.querySelectorAll('#letters-chart rect.bar').length")
    assert bars > 0
    tallest = count("return Math.max(...Array.from(document.querySelectorAll("
                    "'#letters-chart rect.bar')).map(r => r.getBBox().height))")
    assert tallest > 50  # drawn, not collapsed
    assert count("return document.querySelectorAll('#rank-chart polyline').length") == 2
    assert count("return document.querySelectorAll('#sizes-chart rect.bar').length") > 0
    box = count("return document.getElementById('graph').getBoundingClientRect().width")
    assert box > 600
    driver.find_element("css selector", ".legend button[data-community='water']").click()
    lit = count("return document.querySelectorAll('#graph circle.node.on').length")
    assert lit == 4
    # the community map: three discs, and the explorer from a pattern of the drawing
    assert count("return document.querySelectorAll('#community-map g.cnode').length") == 3
    driver.find_element("css selector", "#graph circle.node[data-slug='code-0']").click()
    drawn = count("return document.querySelectorAll('#neighbourhood circle.nnode').length")
    assert drawn == 4  # code-0 and its neighbours code-1, code-2 and code-3
    explore(driver)
    no_errors(driver)
    SCREENSHOTS.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(SCREENSHOTS / "health.png"))


def test_a_large_page_draws_communities_and_explores_on_demand(
        tmp_path: Path, browser: Any) -> None:
    g = large_graph()
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(page.render(g, health.assess(g), title="large"),
                                     encoding="utf-8")
    run = browser.execute_script
    with serve(site) as base:
        browser.get(f"{base}/index.html")
        assert run("return document.getElementById('graph')") is None
        discs = run("return document.querySelectorAll('#community-map g.cnode').length")
        assert discs == 42  # 40 communities, the others together, patterns with none
        box = run("return document.getElementById('community-map')"
                   ".getBoundingClientRect().width")
        assert box > 600
        assert "42 discs for 181 communities" in browser.find_element(
            "id", "map-status").text
        explore(browser)
        search = browser.find_element("id", "pattern-search")
        search.send_keys("tail-01")
        found = run("return Array.from(document.querySelectorAll('#search-results li button'))"
                    ".map(b => b.firstChild.textContent)")
        assert found == [f"tail-{i:03d}" for i in range(10, 20)]
        browser.find_element("css selector", "#search-results li button").click()
        assert run("return document.getElementById('neighbourhood')"
                   ".getAttribute('data-pattern')") == "tail-010"
        no_errors(browser)
        SCREENSHOTS.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOTS / "health-large.png"))


@pytest.mark.skipif(not os.environ.get("GARDENER_HEALTH_LIBRARY"),
                    reason="GARDENER_HEALTH_LIBRARY names no library to measure")
def test_the_given_librarys_page_loads_and_draws(tmp_path: Path, browser: Any) -> None:
    library = Path(os.environ["GARDENER_HEALTH_LIBRARY"])
    site = tmp_path / "site"
    site.mkdir()
    started = time.perf_counter()
    result = CliRunner().invoke(app, ["health", str(library), "--html",
                                      str(site / "index.html")])
    written = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    size = (site / "index.html").stat().st_size
    run = browser.execute_script
    with serve(site) as base:
        started = time.perf_counter()
        browser.get(f"{base}/index.html")  # returns once the load event has fired
        loaded = time.perf_counter() - started
        timing = run("const t = performance.getEntriesByType('navigation')[0];"
                     "return [t.domContentLoadedEventEnd, t.loadEventEnd];")
        discs = run("return document.querySelectorAll('#community-map g.cnode').length")
        assert discs > 1
        explore(browser)
        no_errors(browser)
        SCREENSHOTS.mkdir(exist_ok=True)
        browser.execute_script("document.getElementById('map-status').scrollIntoView()")
        assert browser.save_screenshot(str(SCREENSHOTS / "health-given-map.png"))
        browser.execute_script("document.getElementById('neighbourhood').scrollIntoView()")
        assert browser.save_screenshot(str(SCREENSHOTS / "health-given-pattern.png"))
        print(f"\n{library}: gardener health --html {written:.1f} s; page {size:,} bytes; "
              f"loaded in {loaded:.2f} s (DOMContentLoaded {timing[0]:.0f} ms, load "
              f"{timing[1]:.0f} ms); {discs} discs; screenshots in {SCREENSHOTS}")
