"""Template context shared by every page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from . import selectors


def sandbox_banner(request: HttpRequest) -> dict[str, Any]:
    return {"sandbox_warning": selectors.sandbox_warning()}
