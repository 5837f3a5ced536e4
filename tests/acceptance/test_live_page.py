"""The live page (issue 21, item 6) in a real headless Chromium against the real server and model: the
microphone is Chromium's fake capture device fed from a real recording (JFK, which Chromium loops), and
its words appear as finals; a stereo file streamed from the page shows each party under its own channel.
The page's key goes over the WebSocket subprotocol, as a browser must send it. Chromium and its driver
come from Debian's packages (`make browser`); without them these tests skip and say why."""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.acceptance.server import Server, start_with_key
from tests.acceptance.test_pages import CHROMIUM, DRIVER, chromium, wait_for
from tests.conftest import corpus

pytestmark = pytest.mark.model
RECORD_INTERIMS = """
window.interims = [];
new MutationObserver(() => document.querySelectorAll('.interim').forEach(
  (e) => e.textContent && window.interims.push(e.textContent))
).observe(document.getElementById('channels'), {subtree: true, childList: true, characterData: true});
"""


def pcm_wav(source: Path, target: Path) -> Path:
    """`source` as the 16-bit mono WAV Chromium's fake capture device reads."""
    with av.open(str(source)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
        frames = [f for frame in container.decode(audio=0) for f in resampler.resample(frame)]
        frames += resampler.resample(None)
    samples = np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames])
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(samples.astype("<i2").tobytes())
    return target


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if CHROMIUM is None or DRIVER is None:
        pytest.skip(
            "no Chromium here: `apt-get install chromium chromium-driver` (make test does it as root)"
        )
    microphone = pcm_wav(corpus("jfk.flac"), tmp_path_factory.mktemp("microphone") / "jfk.wav")
    yield from chromium("--window-size=1400,1000", "--use-fake-ui-for-media-stream",
                        "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={microphone}")  # fmt: skip


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    server, key = start_with_key(tmp_path_factory.mktemp("live-page") / "data")
    yield server, key
    server.stop()


def captions(browser: Any, channel: int, kind: str = "final") -> str:
    from selenium.webdriver.common.by import By

    found = browser.find_elements(By.CSS_SELECTOR, f'.channel[data-channel="{channel}"] .{kind}')
    return " ".join(element.text for element in found).lower()


def open_page(browser: Any, server: Server, key: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/live")
    browser.find_element(By.ID, "key").send_keys(key)
    browser.execute_script(RECORD_INTERIMS)


def test_microphone_captions_appear_as_finals(
    browser: Any, keyed_server: tuple[Server, str], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    server, key = keyed_server
    open_page(browser, server, key)
    browser.find_element(By.ID, "start").click()
    wait_for(lambda: "country" in captions(browser, 0), timeout_s=60)
    browser.find_element(By.ID, "stop").click()
    status = wait_for(lambda: "Done" in (text := browser.find_element(By.ID, "status").text) and text)
    assert "americans" in captions(browser, 0), captions(browser, 0)
    assert browser.execute_script("return window.interims.length") > 0  # grey interims came first
    final = browser.find_element(By.CSS_SELECTOR, ".final")
    assert final.value_of_css_property("color") == "rgba(0, 0, 0, 1)"
    assert (
        browser.find_element(By.CSS_SELECTOR, ".interim").value_of_css_property("color") != "rgba(0, 0, 0, 1)"
    )
    assert "request" in status and not browser.find_element(By.ID, "start").get_attribute("disabled")
    browser.save_screenshot(str(tmp_path / "live.png"))


def test_a_stereo_file_shows_each_party_in_its_channel(
    browser: Any, keyed_server: tuple[Server, str]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    server, key = keyed_server
    open_page(browser, server, key)
    Select(browser.find_element(By.ID, "source")).select_by_value("file")
    browser.find_element(By.ID, "file").send_keys(str(corpus("stereo_diarization.wav")))
    browser.find_element(By.ID, "start").click()
    wait_for(lambda: "Done" in browser.find_element(By.ID, "status").text, timeout_s=60)
    assert "wizard" in captions(browser, 0) and "horizon" not in captions(browser, 0)
    assert "horizon" in captions(browser, 1) and "wizard" not in captions(browser, 1)


def test_a_wrong_key_says_why(browser: Any, keyed_server: tuple[Server, str]) -> None:
    from selenium.webdriver.common.by import By

    server, _ = keyed_server
    open_page(browser, server, "ssk_wrong")
    browser.find_element(By.ID, "start").click()
    status = wait_for(lambda: "Not started" in (text := browser.find_element(By.ID, "status").text) and text)
    assert "401" in status, status
