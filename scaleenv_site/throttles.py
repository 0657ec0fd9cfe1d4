"""API throttles that cost the same at any rate.

DRF's throttles keep every request's time in a list that is read and written whole on each request:
at a trainer's hundreds of calls a second that list has thousands of entries. These count requests
in fixed windows with one atomic ``incr`` of the cache (shared by every process with Redis), so a
token gets at most twice its rate across a window's edge, never more. With Redis the count and its
expiry go in one round trip (a pipelined INCR and EXPIRE); Django's ``add`` and ``incr`` would take
three, on every API request. With the per-process memory cache (no Redis configured) the counters
are a dict under a lock: LocMemCache pickled the count in and out, twice a request.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.core.cache import cache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.utils.connection import ConnectionProxy
from rest_framework import throttling


def count_in_window(backend: Any, key: str, timeout: int) -> int:
    """Add one to the counter ``key`` (created with ``timeout`` seconds to live) and return it."""
    if isinstance(backend, ConnectionProxy):
        # django.core.cache.cache stands for the thread's own object of a cache alias; the checks
        # below need the object (isinstance of the proxy is False for every backend).
        backend = caches[backend._alias]
    if isinstance(backend, RedisCache):
        # Django's own client and key scheme, so cache.get(key) reads the same integer.
        full_key = backend.make_and_validate_key(key)
        pipe = backend._cache.get_client(full_key, write=True).pipeline(transaction=False)
        pipe.incr(full_key)
        pipe.expire(full_key, timeout)
        count, _ = pipe.execute()
        return int(count)
    if isinstance(backend, LocMemCache):
        # Keyed by the cache's storage, which every thread's object of the same cache shares.
        return _count_in_process((id(backend._cache), key), timeout)
    # add() creates the counter with its expiry only if missing; incr() is atomic.
    backend.add(key, 0, timeout=timeout)
    try:
        return int(backend.incr(key))
    except ValueError:  # expired between add and incr
        backend.add(key, 1, timeout=timeout)
        return 1


_process_counts: dict[tuple[int, str], tuple[float, int]] = {}  # (cache, key) -> (expires at, count)
_process_lock = threading.Lock()
_PROCESS_KEYS_MAX = 100_000


def _count_in_process(key: tuple[int, str], timeout: int) -> int:
    now = time.monotonic()
    with _process_lock:
        expires, count = _process_counts.get(key, (0.0, 0))
        if expires <= now:
            expires, count = now + timeout, 0
            if len(_process_counts) >= _PROCESS_KEYS_MAX:  # drop the windows that are over
                for old in [k for k, (until, _) in _process_counts.items() if until <= now]:
                    del _process_counts[old]
        _process_counts[key] = (expires, count + 1)
        return count + 1


def forget_counts() -> None:
    """Drop this process's in-memory counters (tests start from zero)."""
    with _process_lock:
        _process_counts.clear()


class _WindowCounter:
    """Mixed into a DRF throttle: same keys and rates, a counter per window instead of a history."""

    cache = cache
    timer = time.time

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:  # type: ignore[attr-defined]
            return True
        key = self.get_cache_key(request, view)  # type: ignore[attr-defined]
        if key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)  # type: ignore[attr-defined]
        self.key = f"{key}:{window}"
        count = count_in_window(self.cache, self.key, int(self.duration) + 1)  # type: ignore[attr-defined]
        self.window_end = (window + 1) * self.duration  # type: ignore[attr-defined]
        return count <= self.num_requests  # type: ignore[attr-defined]

    def wait(self) -> float:
        return max(0.0, self.window_end - self.timer())


class UserThrottle(_WindowCounter, throttling.UserRateThrottle):
    """Per account (token or signed-in user), rate ``user``."""


class AnonThrottle(_WindowCounter, throttling.AnonRateThrottle):
    """Per client address for requests without an account, rate ``anon``."""


class ScopedThrottle(_WindowCounter, throttling.ScopedRateThrottle):
    """Per account and view scope (``throttle_scope``), e.g. ``session-start``."""

    def allow_request(self, request: Any, view: Any) -> bool:
        # DRF's ScopedRateThrottle reads its scope from the view here; then count as above.
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)
