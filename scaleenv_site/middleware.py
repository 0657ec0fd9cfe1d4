"""Project middleware: sign-in for HTML pages (the API authenticates itself, by token or session), and
the Content-Security-Policy header."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.http import HttpRequest, HttpResponseBase

OPEN_PREFIXES = ("/api/", "/healthz", "/static/", "/accounts/login/", "/admin/login/")


class LoginRequiredForPages(LoginRequiredMiddleware):
    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> Any:
        if request.path.startswith(OPEN_PREFIXES):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class PolicyOnceCSPMiddleware(CSPMiddleware):
    """django-csp's middleware with the policy string built once per process.

    django-csp builds the header from the settings on every response (~4 % of a session call's CPU
    under load). Without a nonce or a per-view change (the decorators' ``_csp_*`` attributes) the
    result is always the same string, so those responses get the stored one; any other response goes
    through django-csp unchanged.
    """

    _PER_RESPONSE = ("_csp_config", "_csp_update", "_csp_replace", "_csp_config_ro", "_csp_update_ro",
                     "_csp_replace_ro", "_csp_exempt", "_csp_exempt_ro")

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if getattr(request, "_csp_nonce", None) is not None or any(
                hasattr(response, name) for name in self._PER_RESPONSE):
            return super().process_response(request, response)
        if response.status_code in (500, 404) and settings.DEBUG:
            return response
        for header, setting, policy in ((HEADER, "CONTENT_SECURITY_POLICY", _policy(False)),
                                        (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", _policy(True))):
            excluded = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
            if policy and header not in response and not request.path_info.startswith(tuple(excluded)):
                response[header] = policy
        # As django-csp does: a nonce asked for after the header is written is an error, not a silent gap.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response


@lru_cache(maxsize=2)
def _policy(report_only: bool) -> str:
    """The policy without per-response parts (settings are read once: they do not change at run time)."""
    return build_policy(report_only=report_only)
