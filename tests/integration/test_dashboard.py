"""The dashboard at GET /, in a real headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by selenium) against a real `syncer serve` over real containers.

Screenshots (desktop and a phone-sized window) are written under each test's tmp dir.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.apiserver import CANARY, Served, serve, worker
from tests.helpers import commit_all, unavailable, wait_until

pytestmark = pytest.mark.docker

# Without these, Chromium on this closed network waits on background connections it cannot make.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage")


def _missing(message: str) -> None:
    message += "; run scripts/setup (apt-get install chromium chromium-driver; pip install -e '.[test]')"
    unavailable(message)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium of this test's own (its own profile dir), quit at the end."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        _missing(f"no chromium ({chromium}) or chromedriver ({driver}) on PATH")
    try:
        from selenium import webdriver
    except ImportError:
        _missing("selenium is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,1600"):
        options.add_argument(flag)
    # Debian's chromedriver, named: selenium does not look for (or download) one of its own
    session = webdriver.Chrome(service=webdriver.ChromeService(executable_path=str(driver)), options=options)
    try:
        yield session
    finally:
        session.quit()


def root_of(s: Served) -> str:
    return s.base.removesuffix("/api/v1")


def text_of(driver: Any, element_id: str) -> str:
    """What a part of the page shows, read in one go (a re-render between calls cannot split it)."""
    return str(driver.execute_script("const e = document.getElementById(arguments[0]);"
                                     " return e && !e.hidden ? e.innerText : '';", element_id))


def shows(driver: Any, element_id: str, *wanted: str, timeout: float = 30) -> str:
    def seen() -> str:
        text = text_of(driver, element_id)
        return text if all(w in text for w in wanted) else ""

    try:
        return str(wait_until(seen, timeout, 0.2, message=f"#{element_id} to show {wanted}"))
    except AssertionError:
        page = driver.execute_script("return [document.readyState, location.href,"
                                     " document.body ? document.body.innerText.slice(0, 400) : null]")
        raise AssertionError(f"#{element_id} shows {text_of(driver, element_id)!r}; notice:"
                             f" {text_of(driver, 'notice')!r}; wanted {wanted}; page (state, address,"
                             f" text): {page!r}") from None


def click(driver: Any, css: str) -> None:
    """A real click on the element, found afresh (the page may have redrawn it)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def clicked() -> bool:
        try:
            found = driver.find_elements(By.CSS_SELECTOR, css)
            if not found or not found[0].is_enabled():
                return False
            found[0].click()
            return True
        except StaleElementReferenceException:
            return False

    wait_until(clicked, 20, 0.2, message=f"{css} to be clickable")


def started_at(docker_api: Any, name: str) -> str:
    return str(docker_api.inspect_container(name)["State"]["StartedAt"])


def screenshot(driver: Any, path: Path) -> None:
    assert driver.save_screenshot(str(path)), path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000, path


def test_dashboard_shows_the_project_and_restarts_an_instance(tmp_path: Path, project: str, docker_api: Any,
                                                               browser: Any) -> None:
    with serve(tmp_path, project) as s:
        page = httpx.get(root_of(s) + "/", timeout=30)  # the page itself needs no key
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "script-src 'self'" in page.headers["content-security-policy"]
        paths = httpx.get(f"{s.base}/openapi.json", timeout=30).json()["paths"]
        assert not any(p == "/" or p.startswith("/dashboard") for p in paths), paths
        for name in ("index.html", "app.js", "style.css"):  # no CDN, no external font: nothing remote
            shipped = httpx.get(f"{root_of(s)}/dashboard/{name}" if name != "index.html" else root_of(s) + "/")
            assert shipped.status_code == 200 and not re.search(r"https?://", shipped.text), name
        other = httpx.get(f"{root_of(s)}/dashboard/secrets.txt", timeout=30)
        assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"

        browser.get(f"{root_of(s)}/#key={s.write['key']}")
        wait_until(lambda: "key=" not in browser.current_url, 10, 0.1, message="the key to leave the address bar")
        assert browser.execute_script("return sessionStorage.getItem('syncer.apiKey')") == s.write["key"]

        web, web2, wrk = s.n("web"), s.n("web-2"), s.n("worker")
        shows(browser, "definitions", web, wrk, "in sync", "box@1.0", "2 of 2")
        shows(browser, "overview", project, "in sync", "success")
        instances = shows(browser, "instances", web, web2, wrk)
        assert instances.count("running") >= 3, instances
        shows(browser, "servers", "local", "reachable", "20.10")
        shows(browser, "plan", "Everything matches git")
        shows(browser, "deliveries", "No webhook delivery yet")

        # the timeline, and one deployment's log with its reason (why it was created)
        shows(browser, "deployments", f"create {web}-2", f"create {wrk}")
        deployments = s.ok("GET", "/deployments")["data"]
        mine = next(d for d in deployments if d["definition"] == wrk)
        click(browser, f'li[data-deployment="{mine["id"]}"] button.link')
        shows(browser, "deployments", f"create {wrk} on local: container absent", f"created {wrk} (")

        # a restart, seen through the Docker API
        before = started_at(docker_api, wrk)
        click(browser, f'tr[data-instance="{wrk}"] button[data-action="restart"]')
        wait_until(lambda: started_at(docker_api, wrk) != before, 60, 0.2, message=f"{wrk} to be restarted")
        assert docker_api.inspect_container(wrk)["State"]["Running"] is True
        shows(browser, "notice", f"{wrk}: restart done")
        assert CANARY not in browser.page_source
        screenshot(browser, tmp_path / "dashboard-desktop.png")
        wide = browser.execute_script("return [document.documentElement.scrollWidth,"
                                      " document.documentElement.clientWidth]")
        assert wide[0] <= wide[1], f"the page scrolls sideways on a desktop ({wide})"

        # a phone: one column, no sideways scrolling, the buttons still there
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
        wait_until(lambda: browser.execute_script("return document.documentElement.clientWidth") == 390, 10, 0.1,
                   message="the phone-sized viewport")
        overflow = browser.execute_script("return document.documentElement.scrollWidth")
        assert overflow <= 390, f"the page scrolls sideways on a phone ({overflow}px wide)"
        assert browser.execute_script("return getComputedStyle(document.querySelector('table.cards thead')).display") \
            == "none", "tables should turn into cards on a phone"
        shows(browser, "instances", wrk, "Restart")
        screenshot(browser, tmp_path / "dashboard-phone.png")
        height = int(browser.execute_script("return document.documentElement.scrollHeight"))
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": 390, "height": height, "deviceScaleFactor": 1, "mobile": True})
        screenshot(browser, tmp_path / "dashboard-phone-full.png")

        # a definition removed from git: said so, no `null` for the revision and replicas it no
        # longer has; the commit seen is its id and message (it showed `[object Object]`)
        (s.repo / "definitions/worker.yaml").unlink()
        sha = commit_all(s.repo, "worker retired")
        s.ok("POST", "/sync", 202)
        row = shows(browser, "definitions", wrk, "removed")
        assert "null" not in row and "undefined" not in row, row
        overview = shows(browser, "overview", sha[:12], "worker retired")
        assert "[object" not in overview, overview


def test_dashboard_asks_for_a_key_and_tells_a_read_key_it_may_not_restart(tmp_path: Path, project: str,
                                                                            docker_api: Any, browser: Any) -> None:
    with serve(tmp_path, project, definitions={"worker": worker(project)}) as s:
        wrk = s.n("worker")
        browser.get(root_of(s) + "/")
        shows(browser, "login", "API key", "syncer keys generate")
        assert text_of(browser, "dash") == "", "no data without a key"
        screenshot(browser, tmp_path / "dashboard-key-form.png")

        from selenium.webdriver.common.by import By

        def give(key: str) -> None:
            field = browser.find_element(By.ID, "key-input")
            field.clear()
            field.send_keys(key)
            browser.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()

        give("not-a-key")
        shows(browser, "login-error", "refused", "unknown or revoked API key")
        assert browser.execute_script("return sessionStorage.getItem('syncer.apiKey')") is None

        give(s.read["key"])
        shows(browser, "instances", wrk, "running")
        assert browser.execute_script("return sessionStorage.getItem('syncer.apiKey')") == s.read["key"]
        before = started_at(docker_api, wrk)
        click(browser, f'tr[data-instance="{wrk}"] button[data-action="restart"]')
        shows(browser, "notice", "Not allowed", "need a write key", "may only read")
        assert started_at(docker_api, wrk) == before, "a read key restarted a container"
        start = f'tr[data-instance="{wrk}"] button[data-action="start"]'
        # read in one go in the page: a live refresh may redraw the row between two driver calls
        assert browser.execute_script("const b = document.querySelector(arguments[0]); return b && b.disabled;",
                                      start), "Start should stay disabled on a running instance"
        screenshot(browser, tmp_path / "dashboard-read-key.png")

        # drift made outside syncer shows as drift, and as what a plan would do now
        docker_api.stop(wrk, timeout=5)
        shows(browser, "definitions", wrk, "drifted")
        shows(browser, "plan", "A plan now would do", wrk)
        shows(browser, "overview", "1 drifted")
        shows(browser, "instances", "exited")
        screenshot(browser, tmp_path / "dashboard-drift.png")

        # a reload keeps the key (session storage); "Forget key" drops it
        browser.refresh()
        shows(browser, "instances", wrk)
        click(browser, "#forget")
        shows(browser, "login", "API key")
        assert browser.execute_script("return sessionStorage.getItem('syncer.apiKey')") is None

        # a key revoked while the page polls: back to the form, saying why (never a blank page)
        give(s.read["key"])
        shows(browser, "instances", wrk)
        assert s.cli("keys", "revoke", s.read["id"]).returncode == 0
        shows(browser, "login-error", "refused", "unknown or revoked API key")
        assert browser.execute_script("return sessionStorage.getItem('syncer.apiKey')") is None
