"""System checks for the local set-up (run by `manage.py check` and at server start)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security)
def secret_key_is_kept(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if getattr(settings, "SECRET_KEY_IS_EPHEMERAL", False):
        return [checks.Warning(
            "No DJANGO_SECRET_KEY and no var/secret_key: this process uses a random key, so sign-ins do not "
            "survive a restart and are not shared between server processes.",
            hint="Run `make setup` (it writes var/secret_key) or set DJANGO_SECRET_KEY.", id="scaleenv.W001")]
    return []
