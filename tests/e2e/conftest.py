"""Browser fixtures: Debian's Chromium driven by Playwright, signed in through the real login form."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

# Playwright's sync API keeps an event loop on this thread; the ORM calls in these tests are
# still synchronous, so tell Django not to refuse them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("SCALEENV_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
PASSWORD = "pw-Secret-123"  # what tests.conftest.account gives every account


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM} (CI installs Debian's chromium package)")
        pytest.skip("Chromium is not installed (apt-get install chromium); CI runs these tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


def sign_in(browser, live_server, role: str = "Curator", name: str | None = None):
    """A new browser page signed in as a fresh account holding `role`."""
    from tests.conftest import account

    user = account(role, name)
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/accounts/login/" not in page.url, "sign-in failed"
    return page


@pytest.fixture
def curator_page(browser, live_server):
    return sign_in(browser, live_server, "Curator")


def shots() -> Path:
    """Where the browser tests leave their screenshots (looked at by people, kept out of git)."""
    folder = Path(settings.BASE_DIR) / "var" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def watch(page) -> list[str]:
    """Page errors and Content-Security-Policy violations, collected as they happen."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}")
            if msg.type == "error" or "Content Security Policy" in msg.text else None)
    return problems
