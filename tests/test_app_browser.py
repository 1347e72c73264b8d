"""The web app in a real browser: `nstbench app` on 127.0.0.1, Debian's chromium (headless, driven by
selenium through Debian's chromedriver) uploads chelsea, picks a style and waits for the output.

Skipped, with the reason, where chromium, chromedriver, selenium or Streamlit is missing (.ci/run
installs chromium and chromium-driver). NSTBENCH_APP_SCREENSHOT=PATH also copies the screenshot
there (how docs/app.png is made)."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from apptools import make_models
from conftest import needs_assets
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("streamlit", reason="the app needs Streamlit: pip install -e '.[app]'")
pytest.importorskip("selenium", reason="the browser test needs selenium (the test extra)")
pytestmark = [
    needs_assets,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="no chromium/chromedriver here (apt-get install chromium chromium-driver; .ci/run does)",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"the app exited with status {proc.returncode}: {proc.stdout.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the app did not answer on {url} within {timeout} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory, vgg19_random):
    tmp_path = tmp_path_factory.mktemp("app")
    models = make_models(tmp_path / "models", vgg19_random)
    port = free_port()
    # TMPDIR: the page's per-session folders (uploads, outputs) stay under the test's tmp folder
    env = dict(os.environ, NSTBENCH_OFFLINE="1", OMP_NUM_THREADS="1", TMPDIR=str(tmp_path))
    # its own process group: `nstbench app` starts Streamlit as a child, and both must stop
    proc = subprocess.Popen(
        [sys.executable, "-m", "nstbench", "app", "--port", str(port), "--models", str(models)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, 90)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1500",
        "--disable-extensions",
        "--no-first-run",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def test_upload_pick_style_and_get_the_picture(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    from nstbench.nets.assets import resolve_image

    wait = WebDriverWait(browser, 90)
    browser.get(server)
    chelsea = resolve_image("chelsea")
    upload = wait.until(
        EC.presence_of_element_located((By.CSS_SELECTOR, "section[data-testid='stSidebar'] input[type='file']"))
    )
    upload.send_keys(str(chelsea))
    wait.until(
        EC.presence_of_element_located(
            (By.XPATH, "//section[@data-testid='stSidebar']//*[contains(text(), 'chelsea.png')]")
        )
    )
    # pick the second style (udnie, the nstbench network; the first is a pytorch/examples file): its label
    wait.until(EC.element_to_be_clickable((By.XPATH, "//div[@role='radiogroup']//label[.//*[text()='udnie']]"))).click()
    wait.until(EC.element_to_be_clickable((By.XPATH, "//button[.//*[text()='Stylize']]"))).click()
    img = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".st-key-fast_output img")))
    caption = browser.find_element(By.CSS_SELECTOR, ".st-key-fast_output").text
    assert caption.startswith("udnie: 451x300, forward pass"), caption
    time.sleep(0.5)  # let the image paint before the screenshot
    shot = tmp_path / "app.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("NSTBENCH_APP_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["NSTBENCH_APP_SCREENSHOT"])

    src = img.get_attribute("src")  # served by the app: fetch it as the browser did
    with urllib.request.urlopen(src, timeout=10) as r:
        out = np.asarray(Image.open(io.BytesIO(r.read())).convert("RGB"), dtype=np.float32)
    inp = np.asarray(Image.open(chelsea).convert("RGB"), dtype=np.float32)
    assert out.shape == inp.shape == (300, 451, 3)
    assert np.abs(out - inp).mean() > 10  # 0..255 units: the network changed the picture


def set_number(browser, key: str, value: int) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = browser.find_element(By.CSS_SELECTOR, f".st-key-{key} input")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value), Keys.ENTER)


def test_gatys_run_updates_live_and_cancels(server, browser):
    """The polling fragment and the Cancel button in a real browser (AppTest reruns by hand)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 90)
    browser.get(server)
    tab = wait.until(EC.element_to_be_clickable((By.XPATH, "//*[@role='tab'][.//*[text()='Gatys']]")))
    tab.click()
    wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".st-key-gatys_steps input")))
    set_number(browser, "gatys_steps", 5000)
    set_number(browser, "gatys_size", 64)
    wait.until(EC.text_to_be_present_in_element_value((By.CSS_SELECTOR, ".st-key-gatys_size input"), "64"))
    time.sleep(1)  # the last edit's rerun
    wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, ".st-key-gatys_go button"))).click()
    progress = (By.CSS_SELECTOR, "[data-testid='stProgress']")
    steps_seen = set()

    def advanced(driver):  # three different step counts: the page updated itself twice, no user action
        steps_seen.update(el.text for el in driver.find_elements(*progress))
        return len(steps_seen) >= 3

    wait.until(advanced)
    wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, ".st-key-gatys_cancel button"))).click()
    note = wait.until(EC.visibility_of_element_located((By.XPATH, "//*[starts-with(text(), 'Cancelled at step')]")))
    assert note.text.endswith("of 5000; nothing was written.")
    assert not browser.find_elements(*progress) and not browser.find_elements(
        By.CSS_SELECTOR, ".st-key-gatys_output img"
    )
