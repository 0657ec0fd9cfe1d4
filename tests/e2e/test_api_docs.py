"""The API docs (Swagger UI at /api/docs/, Redoc at /api/redoc/) render offline: every asset comes
from this server (drf-spectacular-sidecar), no request leaves it, and the operations are drawn.

The docs and the schema are public documentation (no sign-in: an agent holding only a token can
read them); the API they describe still needs a token."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def offline_page(browser, live_server, settings):
    """A fresh page whose requests to anywhere but the live server are aborted and recorded."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "api-docs"}}  # anonymous throttle counts of this test alone
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.outside, page.errors, page.failed, page.blocked = [], [], [], []

    def route(route):
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            page.outside.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda message: "Content Security Policy" in message.text and page.blocked.append(
        message.text))  # what the pages' policy (templates/drf_spectacular/) stopped before it was asked
    page.on("response", lambda response: response.status >= 400 and page.failed.append(
        f"{response.status} {response.url}"))
    yield page
    context.close()


def test_swagger_ui_renders_every_operation_from_local_assets(offline_page, live_server):
    page = offline_page
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock", timeout=20_000)
    assert page.locator(".swagger-ui .info .title").first.inner_text().startswith("ScaleEnv API")
    paths = page.locator(".opblock .opblock-summary-path").all_inner_texts()
    assert "/api/sessions/{id}/tool-calls/" in [p.replace("\u200b", "").strip() for p in paths]
    assert page.locator(".opblock-post").count() >= 4  # start, tool call, message, finish
    assets = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    assert any("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in a for a in assets)
    assert page.outside == [] and page.blocked == [] and page.errors == [] and page.failed == []


def test_redoc_renders_the_operations_from_local_assets(offline_page, live_server):
    page = offline_page
    page.goto(f"{live_server.url}/api/redoc/")
    page.wait_for_selector("h2", timeout=20_000)
    headings = page.locator("h2").all_inner_texts()
    assert len(headings) >= 20  # one per operation (20) under the tags' headings
    assert any("tool" in h.lower() and "call" in h.lower() for h in headings), headings
    assert page.locator("text=/api/sessions/{id}/tool-calls/").count() >= 1
    assets = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    assert any("/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js" in a for a in assets)
    assert page.outside == [] and page.errors == [] and page.failed == []
    # Redoc's sidebar always shows Redocly's logo from its CDN: the policy stops it (and nothing else)
    assert all("https://cdn.redoc.ly/redoc/logo-mini.svg" in text for text in page.blocked), page.blocked
