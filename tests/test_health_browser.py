"""The health page in a real browser: served as a static file, rendered by headless Chromium.

Skips, saying why, where Chromium or its driver is missing (``.ci/run`` installs them).
Nothing is fetched from outside: the page is served from a loopback server, the browser is
started with its background networking off, and Selenium is given the driver's path so it
never looks for one to download.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graph_library import Spec, load
from typer.testing import CliRunner

from gardener.cli.main import app

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
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/index.html", len(specs)
    finally:
        server.shutdown()
        server.server_close()


def test_the_page_renders_the_graph_and_charts_without_errors(
        served: tuple[str, int]) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    url, patterns = served
    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--disable-sync", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    try:
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
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        SCREENSHOTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(SCREENSHOTS / "health.png"))
    finally:
        driver.quit()
