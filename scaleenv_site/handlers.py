"""The WSGI handler: Django's own, with the agents' plain session calls taken through a short chain.

Under load nearly every request is a session start, a tool call or a message (every request of an
oracle episode in bench_sessions). Django's handler takes each through all eleven middleware and the URL
resolver, ~10 % of such a call's CPU, although only four of them act on a JSON answer to a token
request. This handler answers those requests with the plain path of tasks.api (the same the URL
route of tool calls and messages takes) inside those four middleware, and hands every other request,
and every such request that the plain path does not take, to Django's full handler unchanged.
tests/api/test_wsgi_handler.py checks that both answer the same, byte for byte.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import set_urlconf
from django.utils.log import log_response
from django.utils.module_loading import import_string

# A session start, and the URL route of a tool call or a message (tasks/api_urls.py), below /api/.
PLAIN_CALL = re.compile(r"/api/sessions/(?:(?P<pk>[0-9]{1,18})/(?P<action_path>tool-calls|messages)/)?")

# The middleware that act on a JSON answer to a token request: HTTPS redirect and security headers,
# Content-Length, X-Frame-Options, Content-Security-Policy. The others (static files, sessions, CSRF
# for a view that is exempt, sign-in, flash messages, htmx) act on pages and cookies and do nothing to
# such a request; they run in their settings order.
PLAIN_CALL_MIDDLEWARE = frozenset({
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "scaleenv_site.middleware.PolicyOnceCSPMiddleware",
})


class _NotPlain(HttpResponse):
    """What the short chain answers for a request the plain path does not take: thrown away, and
    the request goes through Django's full handler."""


class SessionCallsFirstHandler(WSGIHandler):
    def __init__(self) -> None:
        super().__init__()
        handler = convert_exception_to_response(self._plain_view)
        for path in reversed([m for m in settings.MIDDLEWARE if m in PLAIN_CALL_MIDDLEWARE]):
            handler = convert_exception_to_response(import_string(path)(handler))
        self._plain_chain = handler

    def get_response(self, request: HttpRequest) -> HttpResponseBase:
        if request.method == "POST" and settings.SCALEENV_SESSION_PLAIN_PATH and PLAIN_CALL.fullmatch(
                request.path_info):
            set_urlconf(settings.ROOT_URLCONF)
            response = self._plain_chain(request)
            if not isinstance(response, _NotPlain):
                # What BaseHandler.get_response does after its chain.
                response._resource_closers.append(request.close)
                if response.status_code >= 400:
                    log_response("%s: %s", response.reason_phrase, request.path, response=response,
                                 request=request)
                return response
        return super().get_response(request)

    @staticmethod
    def _plain_view(request: HttpRequest) -> HttpResponseBase:
        from tasks.api import plain_session_answer, plain_session_start

        found = PLAIN_CALL.fullmatch(request.path_info)
        assert found is not None  # get_response matched it
        answer: Any = (plain_session_start(request) if found["pk"] is None else
                       plain_session_answer(request, found["pk"], found["action_path"]))
        return answer if answer is not None else _NotPlain()
