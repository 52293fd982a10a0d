"""A real browser and a real service for the web page's tests: Debian's chromium driven by Selenium through
chromium-driver, against `jetscribe serve` (or `jetscribe gateway` alone) started as a user starts it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

from jetscribe.embedded import EmbeddedNats
from tests.ports import free_port

CHROMIUM: Final = os.environ.get("JETSCRIBE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER: Final = os.environ.get("JETSCRIBE_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
# The closed network of the test machines refuses chromium's own connections: these keep it from trying.
CHROMIUM_FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--autoplay-policy=no-user-gesture-required",
)
READY_TIMEOUT_S: Final = 150.0
WAIT_S: Final = 90.0


def chromium_or_skip() -> None:
    """Skip, saying what to install, unless chromium and chromium-driver are there (scripts/test installs them)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if shutil.which(path) is None]
    if missing:
        pytest.skip(
            f"the web page tests need Debian's chromium and chromium-driver ({', '.join(missing)} not found): "
            "apt-get install chromium chromium-driver, or run scripts/test as root"
        )


@dataclass
class Service:
    """A jetscribe process on loopback, and its log."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running(command: str, data_dir: Path, *, ready_path: str, **env: str) -> Iterator[Service]:
    """`jetscribe COMMAND` with a fresh data directory until the block ends, once `ready_path` answers 200."""
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("JETSCRIBE_") and k != "WHISPER_MODEL_PATH"}
    environ = {
        **inherited,
        "PORT": str(port),
        "DATA_DIR": str(data_dir),
        "JETSCRIBE_HOST": "127.0.0.1",
        "JETSCRIBE_USE_GPU": "false",
        "JETSCRIBE_THREADS": "2",
        "LOG_LEVEL": "warning",
        **env,
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / f"{command}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", command], env=environ, stdout=out, stderr=subprocess.STDOUT
        )
    service = Service(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_ready(service, ready_path)
        yield service
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(service: Service, path: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise AssertionError(f"jetscribe exited with {service.process.returncode}:\n{service.text()[-3000:]}")
        try:
            with urllib.request.urlopen(service.url + path, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise AssertionError(f"jetscribe was not ready within {READY_TIMEOUT_S:.0f} s:\n{service.text()[-3000:]}")


@contextmanager
def gateway_alone(data_dir: Path, **env: str) -> Iterator[Service]:
    """`jetscribe gateway` on its own nats-server: no worker ever runs, and the default model (`base`) is declared,
    so jobs are accepted and stay queued."""
    nats = EmbeddedNats(data_dir / "nats")
    nats.start()
    env = {"JETSCRIBE_DECLARED_MODELS": "base", **env}
    try:
        with running("gateway", data_dir, ready_path="/readyz", JETSCRIBE_NATS_URL=nats.url, **env) as service:
            yield service
    finally:
        nats.stop()


class Browser:
    """One chromium with a fresh profile; `downloads` receives what the page saves."""

    def __init__(self, profile: Path, downloads: Path) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service as DriverService

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument("--window-size=1280,1000")
        options.add_experimental_option(
            "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
        )
        self.downloads = downloads
        self.driver = webdriver.Chrome(options=options, service=DriverService(executable_path=CHROMEDRIVER))
        self.driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )

    def close(self) -> None:
        self.driver.quit()

    def open(self, url: str) -> None:
        self.driver.get(url)
        self.wait(lambda: self.js("return document.readyState") == "complete")

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def wait(self, condition: Callable[[], Any], timeout_s: float = WAIT_S, what: str = "") -> Any:
        """Poll `condition` until it returns something true; fail naming `what` and the page's notices."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                notices = self.js("return document.getElementById('notices')?.innerText || ''")
                raise AssertionError(f"timed out waiting for {what or condition}; notices: {notices!r}")
            time.sleep(0.1)

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self, css: str) -> str:
        found = self.find_all(css)
        return str(found[0].text) if found else ""

    def upload(self, *paths: Path) -> None:
        self.find("#files").send_keys("\n".join(str(p) for p in paths))

    def phone(self) -> None:
        """A phone-sized screen (390 × 844 CSS pixels, touch), as Chrome's device emulation gives it."""
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True}
        )

    def desktop(self) -> None:
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def fits_the_screen(self) -> bool:
        return bool(self.js("return document.documentElement.scrollWidth <= window.innerWidth"))
