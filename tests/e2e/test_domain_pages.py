"""Real headless Chromium (Debian's package) driven by Playwright against a live server."""

from __future__ import annotations

import os
import shutil

import pytest

from environments import services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Playwright's sync API keeps an event loop on this thread; the ORM calls in these tests are
# still synchronous, so tell Django not to refuse them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("SCALEENV_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")


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


def test_the_tdg_is_drawn_from_server_positions_and_edges_can_be_filtered(browser, live_server, stored_domain):
    domain = stored_domain
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/domains/{domain.slug}/")
    page.wait_for_function("document.getElementById('tdg').cy !== undefined")
    nodes = page.evaluate("document.getElementById('tdg').cy.nodes().length")
    edges = page.evaluate("document.getElementById('tdg').cy.edges().length")
    assert (nodes, edges) == (domain.stats["nodes"], domain.stats["edges"])
    assert page.locator("#tdg canvas").count() > 0
    visible_before = page.evaluate("document.getElementById('tdg').cy.edges(':visible').length")
    page.uncheck("#tdg-shared")
    visible_after = page.evaluate("document.getElementById('tdg').cy.edges(':visible').length")
    shared_only = sum(1 for d in domain.dependencies.all() if "data_flow" not in d.kinds and "pre_post" not in d.kinds)
    assert visible_before - visible_after == shared_only > 0
    name = domain.tools.filter(status="verified").order_by("name").first().name
    page.locator("table.grid a", has_text=name).first.click()
    assert "Procedural tests" in page.content()
    assert errors == []


def test_the_dashboard_shows_batch_progress(browser, live_server, stored_domain):
    domain = stored_domain
    batch, _ = services.start_synthesis_batch(backend="procedural", domains=2, seed=77)
    page = browser.new_page()
    page.goto(f"{live_server.url}/")
    bar = page.locator(f"#batch-{batch.pk} progress")
    assert bar.get_attribute("value") == "0"
    assert domain.name in page.content()
