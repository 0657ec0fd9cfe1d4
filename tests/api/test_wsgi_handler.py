"""The site's WSGI handler (scaleenv_site/handlers.py) answers plain session calls through a short
middleware chain and everything else through Django's full handler: called as a WSGI server calls
it, it must answer exactly what Django's own WSGIHandler answers (status, every header in order, body)
for a whole episode and for the requests it hands on."""

import json
import re

import pytest
from django.core.handlers.base import BaseHandler
from django.core.handlers.wsgi import WSGIHandler
from django.test import RequestFactory
from rest_framework.authtoken.models import Token

from scaleenv_site.handlers import SessionCallsFirstHandler
from tests.conftest import account
from tests.tasks.conftest import stored_tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def task():
    return next(t for t in stored_tasks(seed=9, per_domain=3) if t.status == "verified" and t.kind == "write")


def token(name: str) -> str:
    return Token.objects.get_or_create(user=account("Agent", name))[0].key


def wsgi_call(app, path: str, body: str | None, key: str | None, **extra: str) -> tuple[str, list, bytes]:
    """One POST as a WSGI server makes it: the environ, start_response, the body iterated and closed."""
    if key is not None:
        extra.setdefault("HTTP_AUTHORIZATION", f"Token {key}")
    environ = RequestFactory().generic("POST", path, data=body or "", content_type=extra.pop(
        "content_type", "application/json"), **extra).environ
    started = {}
    result = app(environ, lambda status, headers: started.update(status=status, headers=headers))
    try:
        content = b"".join(result)
    finally:
        result.close()
    return started["status"], started["headers"], content


def comparable(answer: tuple[str, list, bytes], session: int) -> tuple:
    status, headers, content = answer
    content = re.sub(rb"\bsession %d\b" % session, b"session SESSION", content)
    content = re.sub(rb'"session":%d\b' % session, b'"session":"SESSION"', content)
    # django-csp joins the directives in the order of a set: the same policy may come in another order
    headers = [(name, sorted(value.split("; ")) if name == "Content-Security-Policy" else value)
               for name, value in headers]
    return status, headers, content


def episode(app, task, key: str) -> list[tuple]:
    """The oracle's episode through ``app``, then a message to the finished session (409)."""
    from tasks.loadbench import oracle_plays

    started = wsgi_call(app, "/api/sessions/", json.dumps({"task": task.pk}), key)
    assert started[0].startswith("201"), started
    session = json.loads(started[2])["session"]
    answers = [comparable(started, session)]
    for action in oracle_plays([task])[0].actions:
        path, body = (("tool-calls", {"name": action.name, "arguments": action.arguments}) if action.kind == "tool"
                      else ("messages", {"content": action.content}))
        answers.append(comparable(wsgi_call(app, f"/api/sessions/{session}/{path}/", json.dumps(body), key),
                                  session))
    answers.append(comparable(wsgi_call(app, f"/api/sessions/{session}/messages/", json.dumps({"content": "hi"}),
                                        key), session))
    return answers


@pytest.fixture
def full_handler_calls(monkeypatch):
    """The paths that went through Django's full handler (its middleware chain and URL resolver)."""
    taken = []
    real = BaseHandler.get_response
    monkeypatch.setattr(BaseHandler, "get_response", lambda self, request: taken.append(request.path) or real(
        self, request))
    return taken


def test_an_episode_answers_byte_for_byte_what_djangos_handler_answers(task, full_handler_calls):
    key = token("agent")
    expected = episode(WSGIHandler(), task, key)
    full_handler_calls.clear()
    got = episode(SessionCallsFirstHandler(), task, key)

    assert len(got) == len(expected)
    for index, (mine, django_s) in enumerate(zip(got, expected)):
        assert mine == django_s, (index, mine, django_s)
    assert json.loads(expected[-2][2])["reward"] == 1.0 and expected[-1][0].startswith("409")
    assert json.loads(expected[0][2])["session"] == "SESSION" and expected[0][0].startswith("201")
    assert {name for name, _ in expected[0][1]} >= {"Content-Security-Policy", "X-Frame-Options",
                                                    "X-Content-Type-Options", "Content-Length"}
    # the start, every tool call and message, and the 409 took the short chain
    assert full_handler_calls == []


@pytest.mark.parametrize("case", ["bad token", "no token", "html wanted", "query string", "invalid body",
                                  "another account's session", "no such session", "form body", "GET"])
def test_what_is_not_plain_gets_djangos_answer(task, full_handler_calls, case):
    key = token("agent")
    call = json.dumps({"name": task.gold_chain[0]["tool"], "arguments": task.gold_chain[0]["args"]})

    def ask(app):  # each time on a session of its own, in the same state
        status, _, content = wsgi_call(app, "/api/sessions/", json.dumps({"task": task.pk}), key)
        session = json.loads(content)["session"]
        path, body, caller, extra = f"/api/sessions/{session}/tool-calls/", call, key, {}
        if case == "bad token":
            caller = "not-a-token"
        elif case == "no token":
            caller = None
        elif case == "html wanted":
            extra = {"HTTP_ACCEPT": "text/html"}
        elif case == "query string":
            extra = {"QUERY_STRING": "format=json"}
        elif case == "invalid body":
            body = json.dumps({"name": "", "arguments": 3})
        elif case == "another account's session":
            caller = token("mallory")
        elif case == "no such session":
            path = "/api/sessions/999999/tool-calls/"
        elif case == "form body":
            body, extra = "name=x", {"content_type": "application/x-www-form-urlencoded"}
        elif case == "GET":
            extra = {"REQUEST_METHOD": "GET"}
        return comparable(wsgi_call(app, path, body, caller, **extra), session)

    expected = ask(WSGIHandler())
    full_handler_calls.clear()
    assert ask(SessionCallsFirstHandler()) == expected
    assert expected[0] < "400" if case == "query string" else expected[0] >= "400"
    assert len(full_handler_calls) == 1  # the request itself (the start took the short chain)


def test_the_site_serves_through_this_handler():
    from scaleenv_site.wsgi import application

    assert isinstance(application, SessionCallsFirstHandler)


@pytest.mark.parametrize("case", ["llm user", "no such task", "session cap", "invalid body", "agent model too long",
                                  "viewer token"])
def test_a_start_the_plain_path_does_not_take_gets_djangos_answer(task, full_handler_calls, settings, case):
    key, body = token("agent"), {"task": task.pk}
    if case == "llm user":
        body["user"] = "llm"
    elif case == "no such task":
        body["task"] = 999999
    elif case == "session cap":
        settings.SCALEENV_SESSION_MAX_OPEN = 0
    elif case == "invalid body":
        body = {"task": "one"}
    elif case == "agent model too long":
        body["agent_model"] = "m" * 500
    elif case == "viewer token":
        key = Token.objects.get_or_create(user=account("Viewer", "viewer"))[0].key

    expected = wsgi_call(WSGIHandler(), "/api/sessions/", json.dumps(body), key)
    full_handler_calls.clear()
    got = wsgi_call(SessionCallsFirstHandler(), "/api/sessions/", json.dumps(body), key)
    assert got == expected
    assert expected[0] >= "400"
    # the session cap is answered on the plain path (its 429 is the service's); the rest by DRF
    assert full_handler_calls == ([] if case == "session cap" else ["/api/sessions/"])
