"""Throttles count per account in fixed windows: the n+1-th request of a window is a 429 with a
Retry-After, another account is not affected, and the next window starts afresh."""

import time

import pytest
from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle

from scaleenv_site import throttles
from tests.conftest import api_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_per_minute(monkeypatch):
    cache.clear()
    throttles.forget_counts()
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


@pytest.mark.services
def test_with_redis_one_counter_per_window_counts_every_request_and_expires():
    """The Redis path (one pipelined INCR + EXPIRE) against the real server: counts from 1, is read
    back by Django's cache API, and carries the window's time to live."""
    from django.core.cache.backends.redis import RedisCache

    redis_cache = RedisCache("redis://127.0.0.1:6379/7", {})
    key = "throttle_test:window"
    redis_cache.delete(key)
    assert [throttles.count_in_window(redis_cache, key, 61) for _ in range(3)] == [1, 2, 3]
    assert redis_cache.get(key) == 3
    client = redis_cache._cache.get_client(key)
    assert 0 < client.ttl(redis_cache.make_and_validate_key(key)) <= 61
    redis_cache.delete(key)


def test_with_the_memory_cache_the_counter_counts_from_one_and_starts_again_after_its_time(three_per_minute):
    assert [throttles.count_in_window(cache, "throttle_test:locmem", 61) for _ in range(3)] == [1, 2, 3]
    # counted in the process's dict (not through LocMemCache's pickled add and incr)
    assert [count for (_, key), (_, count) in throttles._process_counts.items() if key == "throttle_test:locmem"] == [3]
    assert throttles.count_in_window(cache, "throttle_test:other", 61) == 1
    assert [throttles.count_in_window(cache, "throttle_test:short", 1) for _ in range(2)] == [1, 2]
    time.sleep(1.05)
    assert throttles.count_in_window(cache, "throttle_test:short", 1) == 1


def test_with_another_cache_the_counter_counts_from_one(three_per_minute):
    from django.core.cache.backends.db import DatabaseCache
    from django.core.management import call_command

    call_command("createcachetable", "throttle_test_cache", verbosity=0)
    table_cache = DatabaseCache("throttle_test_cache", {})
    assert [throttles.count_in_window(table_cache, "throttle_test:db", 61) for _ in range(3)] == [1, 2, 3]


def test_threads_count_in_one_window_though_each_has_its_own_cache_object(three_per_minute):
    """django.core.cache.cache gives each thread its own LocMemCache object of the same storage: a
    throttle's count must be the account's across the process's threads."""
    import threading

    from django.core.cache import caches

    seen, objects = [], []

    def count():
        objects.append(caches["default"])  # kept alive: their ids stay distinct
        seen.extend(throttles.count_in_window(cache, "throttle_test:threads", 61) for _ in range(5))

    workers = [threading.Thread(target=count) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len({id(o) for o in objects}) == 4 and sorted(seen) == list(range(1, 21))


@pytest.mark.services
def test_the_default_cache_on_redis_takes_the_one_round_trip_path(settings, monkeypatch):
    from django.core.cache.backends.redis import RedisCache

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:6379/7"}}
    from django.core.cache import cache as default_cache

    default_cache.delete("throttle_test:proxy")
    monkeypatch.setattr(RedisCache, "add", lambda *a, **k: pytest.fail("add/incr path taken"))
    assert [throttles.count_in_window(default_cache, "throttle_test:proxy", 61) for _ in range(2)] == [1, 2]
    default_cache.delete("throttle_test:proxy")
