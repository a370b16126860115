"""The kiosk in a real browser: headless Chromium (Debian's package) driven by Playwright.

`sr300-liveness kiosk` runs as a subprocess on two recordings, a live face and a flat print; the
page must show the LIVE banner for the first and SPOOF for the second, fetch nothing from any
other origin, and the operator page must list both results. Screenshots go to a temporary folder,
or to docs/ (docs/kiosk_*.png) when SR300_KIOSK_SCREENSHOTS=docs.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="needs Debian's chromium (apt-get install chromium)"),
]
pytest.importorskip("flask", reason="the kiosk needs the kiosk extra (Flask)")
pytest.importorskip("playwright.sync_api", reason="needs Playwright for Python (the dev extra)")
pytest.importorskip("pyrealsense2", reason="the kiosk replays .bag recordings: needs the camera extra")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the kiosk exited with {process.returncode}: {process.stderr.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds} s")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> tuple[Path, Path]:
    from sdk.cli.cmd_synth_bag import synth_bag

    folder = tmp_path_factory.mktemp("kiosk_bags")
    live, attack = folder / "live.bag", folder / "print_flat.bag"
    synth_bag("live", 930_000_001, 20, live)
    synth_bag("print_flat", 930_000_002, 20, attack)
    return live, attack


def _screenshot_dir(tmp_path: Path) -> Path:
    return REPO / "docs" if os.environ.get("SR300_KIOSK_SCREENSHOTS") == "docs" else tmp_path


def test_kiosk_banner_turns_live_for_a_live_recording_and_spoof_for_a_print(recordings, tmp_path):
    from playwright.sync_api import sync_playwright

    live, attack = recordings
    port = _free_port()
    origin = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "sdk.cli", "kiosk", "--source", f"{live},{attack}", "--port", str(port),
         "--hold", "4", "--pace", "15", "--timeout", "30"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    shots = _screenshot_dir(tmp_path)
    profile = tmp_path / "chromium-profile"
    requests: list[str] = []
    try:
        status = _wait_for(f"{origin}/api/status", process, 90)
        assert status["model_version"] and status["state"] in ("starting", "checking", "result", "attract")
        with sync_playwright() as playwright:
            # A fresh profile folder (Playwright passes it to Chromium as --user-data-dir).
            browser = playwright.chromium.launch_persistent_context(
                str(profile), executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True,
                viewport={"width": 1280, "height": 800})
            try:
                page = browser.new_page()
                page.on("request", lambda request: requests.append(request.url))
                page.goto(origin + "/")
                page.wait_for_selector('#banner[data-decision="LIVE"]', timeout=60_000)
                # Selector waits, not wait_for_function: its polling evaluates a string, which the
                # kiosk's Content-Security-Policy (script-src 'self', no eval) rightly refuses.
                page.wait_for_selector("#view-depth:not([hidden])", timeout=20_000)
                assert page.inner_text("#banner") == "LIVE"
                page.screenshot(path=str(shots / "kiosk_live.png"))
                page.wait_for_selector('#banner[data-decision="SPOOF"]', timeout=60_000)
                assert page.inner_text("#banner") == "SPOOF"
                assert "Present your own face" in page.inner_text("#hints")
                page.screenshot(path=str(shots / "kiosk_spoof.png"))
                page.goto(origin + "/operator")
                page.wait_for_selector("#op-results tr:nth-child(2)", timeout=20_000)
                table = page.inner_text("#op-results")
                assert "LIVE" in table and "SPOOF" in table and live.name in table and attack.name in table
                page.screenshot(path=str(shots / "kiosk_operator.png"), full_page=True)
            finally:
                browser.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(profile, ignore_errors=True)
    assert requests and all(url.startswith(origin + "/") for url in requests), \
        [u for u in requests if not u.startswith(origin)]
    assert any("/api/frame/color.jpg" in url for url in requests)
    for name in ("kiosk_live.png", "kiosk_spoof.png", "kiosk_operator.png"):
        assert (shots / name).stat().st_size > 10_000
