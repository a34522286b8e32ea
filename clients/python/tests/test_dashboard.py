"""The live dashboard at ``GET /`` of ``tradewired --http`` (docs/PROTOCOL.md, "HTTP"), in a
real browser.

Debian's headless ``chromium`` is driven through its ``chromium-driver`` by selenium (PyPI;
``make deps`` installs all three). Nothing is downloaded at run time: selenium is handed
``/usr/bin/chromedriver`` and ``SE_OFFLINE`` is set, so selenium-manager never looks for a
browser or a driver. Chromium runs as root in CI, hence ``--no-sandbox``.

Screenshots at 1280×800 and 390×844 go to ``$TW_DASHBOARD_SCREENSHOTS`` (e.g. ``docs``, as
``dashboard-1280x800.png`` and ``dashboard-390x844.png``) when it is set, else to the test's
tmp dir.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest
import requests

os.environ.setdefault("SE_OFFLINE", "true")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from support import REPO_ROOT, Daemon, wait_until  # noqa: E402
from tradewire import Client, StageWorker  # noqa: E402

CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SYMBOLS = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA"]
PAGE_WEIGHT_LIMIT = 150 * 1024


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing: install Debian's {package} (make deps does)", pytrace=False)
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,800", "--no-first-run", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def dashboard(daemon_factory, browser: WebDriver) -> Iterator[Daemon]:
    """A fresh daemon with ``--http``, its dashboard open at 1280×800; at the end, the browser's
    console must hold no error."""
    daemon = daemon_factory.start(http=True)
    viewport(browser, 1280, 800)
    browser.get_log("browser")  # what an earlier test left
    browser.get(daemon.http_url() + "/?refresh=500")  # reads /api/ every 0.5 s instead of 2 s
    wait(browser, lambda d: d.find_element(By.ID, "trading").get_attribute("data-state") != "unknown",
         what="the first /api/status to render")
    yield daemon
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    browser.get("about:blank")  # closes the event stream before the daemon stops
    assert errors == [], f"console errors: {errors}"


def viewport(driver: WebDriver, width: int, height: int) -> None:
    """The page's viewport: the headless window itself at desktop sizes (its viewport is the
    whole window), an emulated phone below 600 px (the viewport meta tag applies)."""
    if width < 600:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True},
        )
    else:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.set_window_size(width, height)
        inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        # The headless window still counts a toolbar: grow it by that much.
        driver.set_window_size(2 * width - inner[0], 2 * height - inner[1])


def click(driver: WebDriver, selector: str, what: str) -> None:
    """Clicks the element `selector` finds, again if the page re-rendered it between the
    find and the click (the tables are redrawn as events arrive)."""

    def attempt(d: WebDriver) -> bool:
        d.find_element(By.CSS_SELECTOR, selector).click()
        return True

    wait(driver, attempt, what=f"a click on {what}")


def wait(driver: WebDriver, pred: Callable[[WebDriver], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    def attempt(d: WebDriver) -> Any:
        try:
            return pred(d)
        except StaleElementReferenceException:
            return False  # re-rendered in between: look again

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.02).until(attempt)
    except TimeoutException:
        pytest.fail(f"timed out after {timeout} s waiting for {what}", pytrace=False)


def text(driver: WebDriver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def present(driver: WebDriver, css: str) -> bool:
    return bool(driver.find_elements(By.CSS_SELECTOR, css))


def screenshot_dir(tmp_path: Path) -> Path:
    wanted = os.environ.get("TW_DASHBOARD_SCREENSHOTS")
    if not wanted:
        return tmp_path
    path = Path(wanted)
    if not path.is_absolute():
        path = REPO_ROOT / path
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------------------


def test_the_page_is_self_contained_light_and_fits_both_sizes(dashboard: Daemon, browser: WebDriver, tmp_path: Path) -> None:
    base = dashboard.http_url()
    page = requests.get(base + "/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert len(page.content) <= PAGE_WEIGHT_LIMIT, f"the page weighs {len(page.content)} bytes"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    # Something to look at: a few iterations (one a dry run), a risk group with a member, an
    # iteration's decisions open.
    worker = StageWorker(dashboard.socket_path, reconnect_delay=0.02, timeout=10.0, stop_grace=0.5)
    worker.stage("risk", name="limits")(lambda call: call.output)
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    try:
        with Client(dashboard.socket_path, timeout=60) as c:
            wait_until(lambda: c.get_status()["stages"]["risk"], what="the risk group to register")
            for strategy, dry_run in (("TrendFollowing", False), ("MeanReversion", True), ("Breakout", False),
                                      ("MomentumRotation", False)):
                last = c.run_pipeline(symbols=SYMBOLS, strategy=strategy, dry_run=dry_run)
            c.publish("dashboard.hello", {"from": "the browser test"})
        looks_and_fits(dashboard, browser, last, screenshot_dir(tmp_path))
    finally:
        worker.stop()
        runner.join(10)


def looks_and_fits(dashboard: Daemon, browser: WebDriver, last: Dict[str, Any], shots: Path) -> None:
    base = dashboard.http_url()
    row = f'#iterations tr[data-id="{last["iteration_id"]}"]'
    wait(browser, lambda d: present(d, row), what="the last iteration's row")
    click(browser, row, "the last iteration's row")
    wait(browser, lambda d: present(d, "#decisions tbody tr[data-symbol]"), what="its decisions")
    wait(browser, lambda d: present(d, '#tail .ev[data-type="dashboard.hello"]'), what="the event in the tail")
    wait(browser, lambda d: present(d, '.group[data-group="limits"]'), what="the risk group")
    timing = browser.execute_script(
        """
        const nav = performance.getEntriesByType('navigation')[0];
        const paint = performance.getEntriesByName('first-contentful-paint')[0];
        return {bytes: nav.encodedBodySize, paint: paint ? paint.startTime : null,
                others: performance.getEntriesByType('resource').map((r) => r.name)};
        """
    )
    assert timing["bytes"] <= PAGE_WEIGHT_LIMIT
    # Everything the page loads comes from the daemon itself (no CDN, no font, no library).
    assert all(name.startswith(base + "/api/") or name.startswith(base + "/events") for name in timing["others"]), timing
    print(f"dashboard: {timing['bytes']} bytes, first contentful paint {timing['paint']} ms")

    for width, height in ((1280, 800), (390, 844)):
        viewport(browser, width, height)
        wait(browser, lambda d: d.execute_script("return window.innerWidth") == width, what=f"a {width} px viewport")
        scroll = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll[0] <= scroll[1], f"horizontal scroll at {width}×{height}: {scroll}"
        browser.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.3)  # a frame or two for the layout
        assert browser.save_screenshot(str(shots / f"dashboard-{width}x{height}.png"))


def test_a_published_event_appears_in_the_tail_within_a_second(dashboard: Daemon, browser: WebDriver) -> None:
    wait(browser, lambda d: d.find_element(By.ID, "live-dot").get_attribute("data-state") == "live",
         what="the event stream to open")
    kind = f"dash.{uuid.uuid4().hex[:8]}"
    with Client(dashboard.socket_path, timeout=30) as c:
        c.publish(kind, {"n": 1})
        published = time.monotonic()
        wait(browser, lambda d: present(d, f'#tail .ev[data-type="{kind}"]'), timeout=5, what="the event in the tail")
        elapsed = time.monotonic() - published
        assert elapsed <= 1.0, f"the event took {elapsed:.3f} s to appear"
        row = browser.find_element(By.CSS_SELECTOR, f'#tail .ev[data-type="{kind}"]')
        assert '{"n":1}' in row.text

        # The filter keeps only matching types; pause holds new events until resumed.
        browser.find_element(By.ID, "filter").send_keys("dash.*")
        wait(browser, lambda d: all(e.get_attribute("data-type").startswith("dash.")
                                    for e in d.find_elements(By.CSS_SELECTOR, "#tail .ev[data-type]")),
             what="the filter to apply")
        browser.find_element(By.ID, "pause").click()
        held = f"dash.{uuid.uuid4().hex[:8]}"
        c.publish(held, None)
        wait(browser, lambda d: "held while paused" in text(d, "#counters"), what="the held counter")
        assert not present(browser, f'#tail .ev[data-type="{held}"]')
        browser.find_element(By.ID, "pause").click()
        wait(browser, lambda d: present(d, f'#tail .ev[data-type="{held}"]'), what="the held event after resume")


def decision_rows(driver: WebDriver) -> Dict[str, str]:
    """The detail's risk column, by symbol."""
    rows = driver.find_elements(By.CSS_SELECTOR, "#decisions tbody tr[data-symbol]")
    return {r.get_attribute("data-symbol"): r.find_element(By.CSS_SELECTOR, "td.decision").text for r in rows}


def test_an_iteration_shows_its_decisions_and_the_book_its_equity(dashboard: Daemon, browser: WebDriver) -> None:
    with Client(dashboard.socket_path, timeout=60) as c:
        run = c.run_pipeline(symbols=SYMBOLS, strategy="TrendFollowing")
        row = f'#iterations tr[data-id="{run["iteration_id"]}"]'
        wait(browser, lambda d: present(d, row), what="the iteration's row")
        cells = [td.text for td in browser.find_elements(By.CSS_SELECTOR, row + " td")]
        assert cells[1] == str(run["iteration"])
        assert cells[3:8] == [str(len(run["signals"])), str(len(run["approved_signals"])),
                              str(len(run["rejected_signals"])),
                              str(sum(1 for r in run["execution_results"] if r["executed"])), str(len(run["errors"]))]
        click(browser, row, "the iteration's row")
        wait(browser, lambda d: len(decision_rows(d)) == len(run["signals"]), what="the iteration's decisions")
        decided = decision_rows(browser)
        for signal in run["approved_signals"]:
            assert decided[signal["symbol"]] == "approved"

        # The book shows get_portfolio's equity (fills above moved it off the starting cash).
        portfolio = c.get_portfolio()
        wait(browser, lambda d: abs(float(d.find_element(By.ID, "equity").get_attribute("data-value") or "nan")
                                    - portfolio["equity"]) < 1e-9,
             what=f"equity {portfolio['equity']}")
        curve = browser.find_elements(By.CSS_SELECTOR, "#curve path")
        assert curve, "the equity curve is drawn"

        # Halted: every order is rejected with the reason the RPC result gives; the row is
        # chosen with the keyboard this time.
        c.set_trading_state("halted", "dashboard check")
        halted = c.run_pipeline(symbols=SYMBOLS, strategy="TrendFollowing")
        rejected = {s["symbol"]: s["rejection_reason"] for s in halted["rejected_signals"]}
        assert rejected, "the halted run rejects something"
        row = f'#iterations tr[data-id="{halted["iteration_id"]}"]'
        wait(browser, lambda d: present(d, row), what="the halted iteration's row")
        browser.execute_script("arguments[0].focus()", browser.find_element(By.CSS_SELECTOR, row))
        browser.switch_to.active_element.send_keys(Keys.ENTER)
        wait(browser, lambda d: browser.find_element(By.CSS_SELECTOR, "#detail h3").text.startswith(
            f"Iteration {halted['iteration']} "), what="the halted iteration's detail")
        wait(browser, lambda d: len(decision_rows(d)) == len(halted["signals"]), what="its decisions")
        decided = decision_rows(browser)
        for symbol, reason in rejected.items():
            assert decided[symbol] == f"rejected: {reason}"


def test_the_trading_badge_follows_set_trading_state(dashboard: Daemon, browser: WebDriver) -> None:
    badge = lambda d: (d.find_element(By.ID, "trading").get_attribute("data-state"),  # noqa: E731
                       d.find_element(By.ID, "trading").text.lower(), text(d, "#trading-reason"))
    assert badge(browser)[0] == "active"
    with Client(dashboard.socket_path, timeout=30) as c:
        for state, reason in (("halted", "drawdown drill"), ("reducing", "winding down"), ("active", "all clear")):
            c.set_trading_state(state, reason)
            wait(browser, lambda d: badge(d) == (state, state, reason), what=f"the badge to show {state}")
    colours = browser.execute_script(
        "const b = document.getElementById('trading'); return getComputedStyle(b).backgroundColor")
    assert colours == "rgb(26, 127, 55)", "active is green"


def test_a_groups_member_count_follows_members_and_a_fail_closed_stage_is_red(dashboard: Daemon, browser: WebDriver) -> None:
    members = '.stage[data-stage="risk"] .group[data-group="watch"] .members'
    clients: List[Client] = []
    try:
        for expected in (1, 2):
            c = Client(dashboard.socket_path, timeout=30).connect()
            clients.append(c)
            c.call("register_stage", {"stage": "risk", "name": "watch"})
            wait(browser, lambda d: present(d, members) and text(d, members) == str(expected),
                 what=f"{expected} member(s)")
        clients.pop().close()
        wait(browser, lambda d: present(d, members) and text(d, members) == "1", what="1 member after one left")
        clients.pop().close()
        wait(browser, lambda d: not present(d, members), what="the group to go with its last member")

        # A durable risk group without a member fails every call, closed: its stage is red.
        c = Client(dashboard.socket_path, timeout=30).connect()
        c.call("register_stage", {"stage": "risk", "name": "guard", "durable": True})
        wait(browser, lambda d: present(d, '.group[data-group="guard"]'), what="the guard group")
        assert browser.find_element(By.CSS_SELECTOR, '.stage[data-stage="risk"]').get_attribute("data-health") == "ok"
        c.close()
        wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, '.stage[data-stage="risk"]').get_attribute(
            "data-health") == "fail_closed", what="the risk stage to fail closed")
        red = browser.execute_script(
            "return getComputedStyle(document.querySelector('.stage[data-stage=risk]')).borderTopColor")
        assert red == "rgb(255, 123, 114)", red
    finally:
        for c in clients:
            c.close()


def test_consumers_and_dead_letters_are_listed(dashboard: Daemon, browser: WebDriver) -> None:
    with Client(dashboard.socket_path, timeout=30) as c:
        sub = c.subscribe("dash.orders.*", consumer="dash-audit", max_deliver=1, ack_wait_ms=100)
        wait(browser, lambda d: "dash-audit" in text(d, "#consumers"), what="the consumer's row")
        c.publish("dash.orders.new", {"id": 1})
        wait(browser, lambda d: "dash-audit" in text(d, "#dead-letters"), timeout=15, what="the dead letter")
        sub.close()


def test_a_thousand_events_a_second_keep_the_page_drawing_and_the_tail_capped(dashboard: Daemon, browser: WebDriver) -> None:
    wait(browser, lambda d: d.find_element(By.ID, "live-dot").get_attribute("data-state") == "live",
         what="the event stream to open")
    kind = f"burst.{uuid.uuid4().hex[:8]}"
    last: Dict[str, Any] = {}

    def publish() -> None:
        with Client(dashboard.socket_path, timeout=30) as c:
            start = time.monotonic()
            for n in range(3000):  # 1000 a second, for three seconds
                delay = start + n / 1000 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                last.update(c.publish(kind, {"n": n, "pad": "x" * 64}))

    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        time.sleep(0.5)
        browser.set_script_timeout(10)
        # Frames the page draws in one second of the burst: a page busy with events draws none.
        frames = browser.execute_async_script(
            """
            const done = arguments[arguments.length - 1];
            let frames = 0;
            const start = performance.now();
            const tick = () => { frames++; if (performance.now() - start < 1000) requestAnimationFrame(tick); else done(frames); };
            requestAnimationFrame(tick);
            """
        )
    finally:
        publisher.join(30)
    assert frames >= 10, f"only {frames} frames in a second of the burst"
    newest = f'#tail .ev[data-seq="{last["seq"]}"]'
    wait(browser, lambda d: present(d, newest), what="the burst's last event")
    first = browser.find_element(By.CSS_SELECTOR, "#tail .ev")
    assert first.get_attribute("data-seq") == str(last["seq"]), "newest first"
    held = browser.find_element(By.ID, "tail").get_attribute("data-rows")
    assert held == "500", f"the tail holds {held} rows"
    drawn = browser.execute_script("return document.querySelectorAll('#tail .ev').length")
    assert 0 < drawn < 40, f"{drawn} rows in the document: only those in sight are drawn"
    received = int(text(browser, "#counters").split(" received")[0])
    assert received >= 3000, f"the page counted {received} events"
    print(f"burst: {frames} frames drawn in one second at 1000 events/s")


@pytest.mark.journal_only
def test_the_tail_resumes_after_a_restart_without_a_gap_or_a_repeat(daemon_factory, browser: WebDriver,
                                                                     tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    extra = ["--http", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "data")]
    first = daemon_factory.start(extra=extra)
    viewport(browser, 1280, 800)
    browser.get_log("browser")
    browser.get(first.http_url() + "/")
    wait(browser, lambda d: d.find_element(By.ID, "live-dot").get_attribute("data-state") == "live",
         what="the event stream to open")
    seqs: List[int] = []
    with Client(first.socket_path, timeout=30) as c:
        seqs += [c.publish("resume.before", {"n": n})["seq"] for n in range(3)]
    wait(browser, lambda d: present(d, f'#tail .ev[data-seq="{seqs[-1]}"]'), what="the events before the stop")
    first.stop()
    second = daemon_factory.start(extra=extra)
    with Client(second.socket_path, timeout=30) as c:
        # Published before the page is back: its reconnection replays them (Last-Event-ID).
        seqs += [c.publish("resume.after", {"n": n})["seq"] for n in range(3)]
    wait(browser, lambda d: present(d, f'#tail .ev[data-seq="{seqs[-1]}"]'), timeout=20, what="the events after")
    shown = [int(e.get_attribute("data-seq")) for e in browser.find_elements(By.CSS_SELECTOR, '#tail .ev[data-type^="resume."]')]
    assert sorted(shown) == seqs, f"each event once, none missing: {shown}"
    assert "stream gaps 0" in text(browser, "#counters")
    # While the daemon was down the browser could not connect; nothing else may be an error.
    errors = [e for e in browser.get_log("browser")
              if e["level"] == "SEVERE" and "ERR_CONNECTION_REFUSED" not in e["message"]]
    browser.get("about:blank")
    assert errors == [], f"console errors: {errors}"
