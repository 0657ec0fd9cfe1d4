"""Token authentication that remembers a token's account per process.

Every session call authenticates; reading the token, the user and both permission tables each
time costs three queries, more than the call's own work. A process keeps what it read for
SCALEENV_AUTH_CACHE_SECONDS (default 30): a revoked token, a deactivated account or a changed
role takes effect within that time.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings
from django.db.models.base import ModelState
from rest_framework.authentication import TokenAuthentication

MAX_ENTRIES = 10_000


def _copy_of(user: Any) -> Any:
    """What ``copy.copy`` makes of a model instance (the model's ``__getstate__``: its attributes, its
    own ``_state`` and a copy of its related-object cache), without the pickle protocol's detour
    through the app registry and ``copy.copy`` of the state (a user has no memoryview attribute,
    the one other thing ``__getstate__`` handles)."""
    clone = object.__new__(type(user))
    clone.__dict__.update(user.__dict__)
    state = object.__new__(ModelState)
    state.__dict__.update(user._state.__dict__)
    state.fields_cache = dict(user._state.fields_cache)
    clone._state = state
    return clone


class CachedTokenAuthentication(TokenAuthentication):
    _remembered: dict[str, tuple[float, Any, Any]] = {}
    _lock = threading.Lock()

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        seconds = getattr(settings, "SCALEENV_AUTH_CACHE_SECONDS", 0)
        if seconds <= 0:
            return super().authenticate_credentials(key)
        now = time.monotonic()
        with self._lock:
            found = self._remembered.get(key)
        if found is not None and found[0] > now:
            # A copy per request: a view may set attributes on request.user; the permission sets the
            # copy shares are never changed after they are read.
            return _copy_of(found[1]), found[2]
        user, token = super().authenticate_credentials(key)  # refuses unknown tokens and inactive users
        user.get_all_permissions()  # read now, kept on the user (ModelBackend's per-user caches)
        with self._lock:
            if len(self._remembered) >= MAX_ENTRIES:
                self._remembered = {k: v for k, v in self._remembered.items() if v[0] > now}
                if len(self._remembered) >= MAX_ENTRIES:
                    self._remembered.clear()
            self._remembered[key] = (now + seconds, user, token)
        return _copy_of(user), token

    @classmethod
    def forget(cls) -> None:
        """Drop everything remembered (tests that change roles or tokens in place call it)."""
        with cls._lock:
            cls._remembered.clear()
