"""End to end: the playground page in real headless Chromium (Debian's ``chromium`` +
``chromium-driver``, driven by Selenium). Picks the spiral set and a KAN through the page's
controls, trains, and checks that the test loss drops and the KAN edge plots appear.

Skipped only when Chromium is not installed (``scripts/install-browser.sh`` installs it).
Screenshots: the test's tmp dir; set ``NNLAB_PLAYGROUND_SCREENSHOT=docs/playground.png`` to
also write the README's picture.
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                       reason="Chromium is not installed (run scripts/install-browser.sh: "
                              "apt-get install -y chromium chromium-driver)"),
    pytest.mark.filterwarnings("ignore:.*outside the grid range:UserWarning"),
]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,900"]


@pytest.fixture
def server():
    import uvicorn

    from nnlab.playground.server import create_app
    from nnlab.playground.sessions import SessionManager

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    manager = SessionManager(max_sessions=4)
    config = uvicorn.Config(create_app(manager), log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", manager
    srv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def browser(tmp_path_factory):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:  # Chromium is here, so the test must run: say what is missing
        pytest.fail("Chromium is installed but selenium is not: pip install 'selenium==4.51.0' "
                    "(part of the test extra)")

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait_for(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def text(driver, id_: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, id_).text


def test_spiral_kan_trains_live_in_chromium(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    url, manager = server
    d = browser
    d.get(url + "/")
    wait_for(lambda: text(d, "status") == "paused", 30, "the first session")
    Select(d.find_element(By.ID, "dataset")).select_by_value("spiral")
    wait_for(lambda: "dataset=spiral" in d.current_url, 10, "the dataset in the URL")
    Select(d.find_element(By.ID, "model")).select_by_value("kan")
    wait_for(lambda: "model=kan" in d.current_url, 10, "the model in the URL")
    wait_for(lambda: "KAN" in text(d, "inside-title"), 10, "the KAN view")
    edges = d.find_elements(By.CSS_SELECTOR, "canvas.edge")
    assert len(edges) == 2 * 5 + 5 * 2  # width [2, 5, 2]: one plot per edge
    test_loss = lambda: float(d.find_element(By.ID, "test-loss").get_attribute("data-value"))  # noqa: E731
    epoch = lambda: int(text(d, "epoch").split()[-1])  # noqa: E731
    assert epoch() == 0
    first = test_loss()

    d.find_element(By.ID, "play").click()
    wait_for(lambda: text(d, "status") == "playing", 5, "play")
    wait_for(lambda: epoch() >= 10 and test_loss() < 0.8 * first, 25,
             "the test loss to drop by 20% while playing")
    d.find_element(By.ID, "play").click()  # pause
    wait_for(lambda: text(d, "status") == "paused", 5, "pause")
    assert test_loss() < 0.8 * first
    edges = d.find_elements(By.CSS_SELECTOR, "canvas.edge")
    assert len(edges) == 20
    importance = [float(e.get_attribute("data-importance")) for e in edges]
    assert max(importance) == pytest.approx(1.0) and min(importance) < 1.0
    assert d.find_element(By.ID, "error").get_attribute("hidden") is not None  # no error shown

    shot = tmp_path / "playground-spiral-kan.png"
    assert d.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    extra = os.environ.get("NNLAB_PLAYGROUND_SCREENSHOT")
    if extra:
        Path(extra).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, extra)

    # one browser start is the slow part, so the same test goes on: leaving the page frees the
    # session, a bad link shows a message (no crash), a pasted good link works again
    d.get("about:blank")  # the tab leaves the page: its session is closed at once
    wait_for(lambda: len(manager.sessions) == 0, 10, "the session to be freed")
    d.get(url + "/#dataset=spiral&width=-3&activation=relu")  # a fresh page, a bad link
    box = d.find_element(By.ID, "error")
    wait_for(lambda: box.is_displayed() and "width" in box.text, 10, "the error message")
    assert "out of range" in box.text
    d.get(url + "/#dataset=moons")  # a pasted link (hash change): the server is still fine
    wait_for(lambda: text(d, "status") == "paused" and "moons" in d.current_url, 15,
             "a fresh session")
    assert len(manager.sessions) == 1
