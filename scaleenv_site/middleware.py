"""Every HTML page needs a signed-in user; the API authenticates itself (token or session)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.http import HttpRequest

OPEN_PREFIXES = ("/api/", "/healthz", "/static/", "/accounts/login/", "/admin/login/")


class LoginRequiredForPages(LoginRequiredMiddleware):
    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> Any:
        if request.path.startswith(OPEN_PREFIXES):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
