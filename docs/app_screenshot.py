"""docs/app.png: the web app's Fast tab stylising chelsea with a trained network, in headless chromium.

    python docs/app_screenshot.py [--models runs] [--style mosaic] [--out docs/app.png]

Starts `nstbench app` on a free loopback port with the networks under --models (`make app-models`
or `make gallery` train them, on the stand-in weights where no ImageNet files are present), drives
Debian's chromium through selenium and chromedriver (the test extra; `.ci/run` installs both) as
tests/test_app_browser.py does, and saves the page scaled to 3/4 and reduced to 128 colours (a
small file for the README). The page names the loss network's weights under the output.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the app did not answer on {url} within {timeout} s")


def screenshot(url: str, style: str, content: Path, shot: Path) -> str:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run"):
        opts.add_argument(arg)
    opts.add_argument("--window-size=1280,1300")
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=opts)
    try:
        wait = WebDriverWait(driver, 180)
        driver.get(url)
        upload = wait.until(
            EC.presence_of_element_located((By.CSS_SELECTOR, "section[data-testid='stSidebar'] input[type='file']"))
        )
        upload.send_keys(str(content))
        wait.until(EC.presence_of_element_located((By.XPATH, f"//*[contains(text(), '{content.name}')]")))
        label = f"//div[@role='radiogroup']//label[.//*[text()='{style}']]"
        wait.until(EC.element_to_be_clickable((By.XPATH, label))).click()
        wait.until(EC.element_to_be_clickable((By.XPATH, "//button[.//*[text()='Stylize']]"))).click()
        wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".st-key-fast_output img")))
        caption = driver.find_element(By.CSS_SELECTOR, ".st-key-fast_output").text
        time.sleep(1.0)  # let the image paint
        driver.save_screenshot(str(shot))
        return caption
    finally:
        driver.quit()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--models", type=Path, default=Path("runs"), help="folder of trained networks (default runs)")
    ap.add_argument("--style", default="mosaic", help="the style to pick (default mosaic)")
    ap.add_argument("--content", default="chelsea", help="content image name or path (default chelsea)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "app.png")
    args = ap.parse_args(argv)
    from PIL import Image

    from nstbench.assets import resolve_image

    content = Path(resolve_image(args.content))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="nstbench-shot-") as tmp:
        env = dict(os.environ, TMPDIR=tmp)
        proc = subprocess.Popen(
            [sys.executable, "-m", "nstbench", "app", "--port", str(port), "--models", str(args.models)],
            cwd=REPO,
            env=env,
            start_new_session=True,
        )
        try:
            wait_healthy(url, proc)
            shot = Path(tmp) / "app.png"
            caption = screenshot(url, args.style, content, shot)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        im = Image.open(shot).convert("RGB")
        im = im.resize((im.width * 3 // 4, im.height * 3 // 4), Image.LANCZOS).quantize(128)
        im.save(args.out, optimize=True)
    print(f"wrote {args.out} ({caption.splitlines()[0] if caption else 'no caption'})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
