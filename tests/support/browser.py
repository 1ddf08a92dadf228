"""Headless Debian Chromium for the browser tests (Playwright cannot download its own browser here)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """The browser; without it a local run skips with the reason, and CI (CI=true) fails."""
    if not CHROMIUM.exists():  # noqa: ASYNC240 (once per module, before any I/O of the test)
        message = "Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()
