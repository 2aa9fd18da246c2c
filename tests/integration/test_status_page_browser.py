"""The status page in a real headless browser (Debian's chromium, driven by selenium): it renders
the recorded day, its charts have data points, the console stays clean, and it refuses a
request without credentials. Saves a screenshot (docs/img/status-page.png is one of these)."""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from history_day import DAY_PASSWORD, Day, stored_samples

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
IN_CI = bool(os.environ.get("CI"))
SCREENSHOT_TO = os.environ.get("DYNOMATIC_SCREENSHOT_TO")  # read before scrub_env runs
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1150,2200",
)

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()) and not IN_CI:
    pytest.skip(
        "chromium and chromium-driver are not installed (apt-get install chromium "
        "chromium-driver); CI installs them and never skips this",
        allow_module_level=True,
    )


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()


def severe(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def statuses(driver: Any, url: str) -> list[int]:
    """The HTTP status of each response to ``url``, from the browser's own network log."""
    found = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.responseReceived":
            response = message["params"]["response"]
            if response["url"] == url:
                found.append(int(response["status"]))
    return found


def test_the_page_refuses_a_browser_without_credentials(browser: Any, day_page: str) -> None:
    browser.get(day_page + "/")
    assert statuses(browser, day_page + "/") == [401]
    assert browser.find_elements("tag name", "svg") == []
    assert browser.find_elements("css selector", "path[data-points]") == []


def test_the_page_renders_the_day_with_charted_points_and_a_clean_console(
    browser: Any, day_page: str, recorded_day: Day, tmp_path: Path
) -> None:
    token = base64.b64encode(f"dynomatic:{DAY_PASSWORD}".encode()).decode()
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}}
    )
    browser.get(day_page + "/")
    assert browser.title == f"dynomatic: {recorded_day_app(recorded_day)}"
    paths = browser.find_elements("css selector", "figure path[data-points]")
    assert len(paths) == 8  # 2 types x (backlog, latency) x (the measure, dynos)
    ready = browser.find_element(
        "css selector", 'figure[data-type="worker"][data-chart="backlog"] path[data-series="ready"]'
    )
    values = [p.split(",")[1] for p in ready.get_attribute("data-points").split(";")]
    rows = [r for r in stored_samples(recorded_day.url) if r["process_type"] == "worker"]
    assert [float(v) for v in values] == [float(r["ready_max"]) for r in rows]
    for path in paths:  # drawn, not just present: each has an extent on screen
        box = browser.execute_script(
            "const b = arguments[0].getBBox(); return [b.width, b.height]", path
        )
        assert box[0] > 100, box
    assert "Events, newest first" in browser.find_element("tag name", "body").text
    assert severe(browser) == []
    assert statuses(browser, day_page + "/") == [200]
    shot = tmp_path / "status-page.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000
    if SCREENSHOT_TO:
        shutil.copyfile(shot, SCREENSHOT_TO)


def recorded_day_app(day: Day) -> str:
    from history_day import APP  # noqa: PLC0415

    assert day.url
    return APP
