"""Real headless Chromium (Debian's package) driven by Playwright against a live server."""

from __future__ import annotations

import pytest

from environments import services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_tdg_is_drawn_from_server_positions_and_edges_can_be_filtered(curator_page, live_server, stored_domain):
    domain = stored_domain
    page = curator_page
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


def test_the_dashboard_shows_batch_progress(curator_page, live_server, stored_domain):
    domain = stored_domain
    batch, _ = services.start_synthesis_batch(backend="procedural", domains=2, seed=77)
    page = curator_page
    page.goto(f"{live_server.url}/")
    bar = page.locator(f"#batch-{batch.pk} progress")
    assert bar.get_attribute("value") == "0"
    assert domain.name in page.content()
