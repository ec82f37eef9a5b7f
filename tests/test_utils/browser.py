"""Debian's chromium and chromium-driver for the browser tests, installed with apt-get when missing.

No browser download of its own: the browser is the distribution's package (CI's clean machine reaches
Debian's repositories), driven headless by selenium through the chromedriver of the same package
version."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

PACKAGES = ("chromium", "chromium-driver", "fonts-dejavu-core")
INSTALL = ("apt-get", "install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300", *PACKAGES)
HOW = "apt-get install chromium chromium-driver"


def _found() -> tuple[str | None, str | None]:
    return shutil.which("chromium"), shutil.which("chromedriver")


def _apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=600,
                          env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"})


def debian_chromium() -> tuple[str, str]:
    """The paths of ``chromium`` and ``chromedriver``; installs the Debian packages when either is missing
    (as root with apt-get, updating the package lists once if the first attempt fails), skips the test
    where that is impossible and fails it when apt-get does."""
    chromium, driver = _found()
    if chromium and driver:
        return chromium, driver
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip(f"the browser tests need Debian's chromium and chromedriver: run `{HOW}` as root")
    result = _apt_get(*INSTALL)
    if result.returncode != 0:  # no or stale package lists (a fresh machine): update them, then retry
        _apt_get("apt-get", "update")
        result = _apt_get(*INSTALL)
    chromium, driver = _found()
    if result.returncode != 0 or not (chromium and driver):
        pytest.fail(f"`{' '.join(INSTALL)}` could not install the browser (exit {result.returncode}):\n"
                    f"{(result.stdout + result.stderr)[-3000:]}", pytrace=False)
    return chromium, driver
