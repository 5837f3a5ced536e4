"""The pages people look at, in a real headless browser (issue 13, items 1 and 2): /docs renders every
route and its "Try it out" runs a request against the server; format=html shows the conversation with
its speakers, the talk-time chart and marked words. Chromium and its driver come from Debian's packages
(`make test` installs them when it runs as root); without them these tests skip and say why."""

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.server import Server
from tests.conftest import corpus

pytestmark = pytest.mark.model
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def chromium(*flags: str) -> Iterator[Any]:
    """Debian's headless Chromium under selenium, with `flags` besides the usual ones; skips without it."""
    if CHROMIUM is None or DRIVER is None:
        pytest.skip(
            "no Chromium here: `apt-get install chromium chromium-driver` (make test does it as root)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", *flags):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium("--window-size=1400,2000")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("pages") / "data").start()
    yield running
    running.stop()


def wait_for(condition: Any, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("the page never showed what was expected")


def test_docs_page_renders_the_routes_and_try_it_out_works(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/docs")
    paths = wait_for(
        lambda: [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")]
    )
    for expected in ("/v1/transcribe", "/v1/transcribe/{request_id}", "/v1/audio/transcriptions", "/healthz"):
        assert any(expected == path.replace("\u200b", "") for path in paths), (expected, paths)
    block = next(
        e for e in browser.find_elements(By.CSS_SELECTOR, ".opblock")
        if e.find_element(By.CSS_SELECTOR, ".opblock-summary-path").text.replace("\u200b", "") == "/v1/models"
    )  # fmt: skip
    block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait_for(lambda: block.find_elements(By.CSS_SELECTOR, ".try-out__btn"))[0].click()
    wait_for(lambda: block.find_elements(By.CSS_SELECTOR, ".execute"))[0].click()
    status = wait_for(
        lambda: [
            e.text
            for e in block.find_elements(By.CSS_SELECTOR, ".live-responses-table .response-col_status")
            if e.text
        ]
    )
    assert "200" in status, status  # the column's header says "Code"
    assert "tiny.en" in block.find_element(By.CSS_SELECTOR, ".live-responses-table").text
    browser.save_screenshot(str(tmp_path / "docs.png"))


def test_html_result_shows_the_conversation(browser: Any, server: Server, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    answer = server.submit(
        corpus("stereo_diarization.wav"), channel_labels="agent,customer", wait="60", format="json"
    )
    assert answer.status == 200, answer.body
    request_id = json.loads(answer.body)["request_id"]
    browser.get(f"{server.url}/v1/transcribe/{request_id}?format=html")
    turns = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".turn"))
    text = " ".join(turn.text for turn in turns)
    assert "agent" in text and "customer" in text
    assert "horizon" in text.lower() and "wizard" in text.lower()
    chart = browser.find_element(By.CSS_SELECTOR, "#talk svg")
    assert chart.is_displayed() and "overlap" in chart.text
    assert chart.size["width"] > 100
    shot = tmp_path / "conversation.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
