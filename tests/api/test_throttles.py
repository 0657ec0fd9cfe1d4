"""Throttles count per account in fixed windows: the n+1-th request of a window is a 429 with a
Retry-After, another account is not affected, and the next window starts afresh."""

import pytest
from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle

from scaleenv_site import throttles
from tests.conftest import api_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_per_minute(monkeypatch):
    cache.clear()
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "user": "3/minute"})
    yield
    cache.clear()


def test_the_fourth_request_in_a_window_is_refused_with_retry_after_and_others_go_on(three_per_minute, monkeypatch):
    clock = [600.0]  # the start of a one-minute window
    monkeypatch.setattr(throttles._WindowCounter, "timer", staticmethod(lambda: clock[0]))
    alice, bob = api_client("Agent", "alice"), api_client("Agent", "bob")
    assert [alice.get("/api/domains/").status_code for _ in range(3)] == [200, 200, 200]
    clock[0] = 615.0
    refused = alice.get("/api/domains/")
    assert refused.status_code == 429 and refused.json()["detail"].startswith("Request was throttled")
    assert int(refused["Retry-After"]) == 45  # until the window ends
    assert bob.get("/api/domains/").status_code == 200  # counted per account
    clock[0] = 660.0  # the next window
    assert alice.get("/api/domains/").status_code == 200
