"""Real headless Chromium (Debian's package) driven by Playwright against a live server. The graph
widget's browser tests are in test_graph.py."""

from __future__ import annotations

import pytest

from environments import services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_dashboard_shows_batch_progress(curator_page, live_server, stored_domain):
    domain = stored_domain
    batch, _ = services.start_synthesis_batch(backend="procedural", domains=2, seed=77)
    page = curator_page
    page.goto(f"{live_server.url}/")
    bar = page.locator(f"#batch-{batch.pk} progress")
    assert bar.get_attribute("value") == "0"
    assert domain.name in page.content()
