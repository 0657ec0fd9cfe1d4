"""Plain tool calls and messages skip DRF's request cycle (tasks/api.py, plain_session_call) and must
answer exactly what the DRF view answers: the same statuses, bodies and headers for a whole episode,
and every other request (bad token, bad body, another account's session, HTML wanted, a cookie
sign-in without CSRF) handed to the DRF view unchanged."""

import json
import re

import pytest

from tests.conftest import api_client, page_client
from tests.tasks.conftest import stored_tasks

pytestmark = pytest.mark.django_db(transaction=True)

HEADERS = ("Content-Type", "Allow", "Vary", "Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options")


@pytest.fixture
def task():
    return next(t for t in stored_tasks(seed=9, per_domain=3) if t.status == "verified" and t.kind == "write")


def answered(response, session):
    """Status, body (the session's own id written as SESSION) and the headers a client may read."""
    body = re.sub(rf"\bsession {session}\b", "session SESSION", response.content.decode())
    headers = {h: response.get(h) for h in HEADERS}
    # django-csp joins the directives in the order of a set: the same policy may come in another order
    headers["Content-Security-Policy"] = sorted((headers["Content-Security-Policy"] or "").split("; "))
    return response.status_code, body, headers


def oracle_episode(client, task):
    """The oracle's requests through HTTP, each with its answer, then the calls a finished session refuses."""
    from tasks.loadbench import oracle_plays

    play = oracle_plays([task])[0]
    started = client.post("/api/sessions/", json.dumps({"task": task.pk}), content_type="application/json")
    session = started.json()["session"]
    answers = []
    for action in play.actions:
        if action.kind == "tool":
            path, body = "tool-calls", {"name": action.name, "arguments": action.arguments}
        else:
            path, body = "messages", {"content": action.content}
        answers.append(answered(client.post(f"/api/sessions/{session}/{path}/", json.dumps(body),
                                            content_type="application/json"), session))
    answers.append(answered(client.post(f"/api/sessions/{session}/messages/", json.dumps({"content": "hi"}),
                                        content_type="application/json"), session))  # finished: 409
    return session, answers


def test_an_episode_answers_the_same_on_the_plain_path_and_through_drf(task, settings, monkeypatch):
    from tasks import api

    agent = api_client("Agent", "agent")
    settings.SCALEENV_SESSION_PLAIN_PATH = False
    _, through_drf = oracle_episode(agent, task)

    settings.SCALEENV_SESSION_PLAIN_PATH = True
    handed_on = []
    real = api._drf_session_view
    monkeypatch.setattr(api, "_drf_session_view", lambda path: handed_on.append(path) or real(path))
    _, plain = oracle_episode(agent, task)

    assert len(plain) == len(through_drf)
    for index, (got, expected) in enumerate(zip(plain, through_drf)):
        assert got == expected, (index, got, expected)
    assert through_drf[-2][0] == 200 and json.loads(through_drf[-2][1])["reward"] == 1.0
    assert through_drf[-1][0] == 409
    assert handed_on == []  # every call of the episode, the refusal included, took the plain path


@pytest.mark.parametrize("case", ["bad token", "no token", "html wanted", "query string", "invalid body",
                                  "not json", "another account's session", "no such session", "form body",
                                  "superscript digit id", "huge id"])
def test_what_is_not_plain_goes_to_the_drf_view_and_gets_its_answer(task, settings, monkeypatch, case):
    from tasks import api

    owner = api_client("Agent", "agent")
    session = owner.post("/api/sessions/", json.dumps({"task": task.pk}), content_type="application/json").json()[
        "session"]
    call = {"name": task.gold_chain[0]["tool"], "arguments": task.gold_chain[0]["args"]}
    client, path, body, content_type, extra = owner, f"/api/sessions/{session}/tool-calls/", json.dumps(call), \
        "application/json", {}
    if case == "bad token":
        extra = {"HTTP_AUTHORIZATION": "Token not-a-token"}
    elif case == "no token":
        extra = {"HTTP_AUTHORIZATION": ""}
    elif case == "html wanted":
        extra = {"HTTP_ACCEPT": "text/html"}
    elif case == "query string":
        path += "?format=json"
    elif case == "invalid body":
        body = json.dumps({"name": "", "arguments": 3})
    elif case == "not json":
        body = "{"
    elif case == "another account's session":
        client = api_client("Agent", "mallory")
    elif case == "no such session":
        path = "/api/sessions/999999/tool-calls/"
    elif case == "superscript digit id":
        path = "/api/sessions/\u00b2/tool-calls/"  # "²".isdigit() is true; int("²") is an error
    elif case == "huge id":
        path = f"/api/sessions/{'9' * 30}/tool-calls/"
    elif case == "form body":
        body, content_type = "name=x", "application/x-www-form-urlencoded"

    def ask():  # each time on a session of its own, in the same state
        fresh = owner.post("/api/sessions/", json.dumps({"task": task.pk}), content_type="application/json").json()[
            "session"]
        return answered(client.post(path.replace(f"/{session}/", f"/{fresh}/"), body, content_type=content_type,
                                    **extra), fresh)

    settings.SCALEENV_SESSION_PLAIN_PATH = False
    through_drf = ask()
    settings.SCALEENV_SESSION_PLAIN_PATH = True
    handed_on = []
    real = api._drf_session_view
    monkeypatch.setattr(api, "_drf_session_view", lambda p: handed_on.append(p) or real(p))
    assert ask() == through_drf
    assert through_drf[0] >= 400 or case == "query string"
    assert handed_on == ["tool-calls"]


def test_a_cookie_sign_in_still_needs_the_csrf_token(task):
    """The plain path is for tokens: a browser session's POST without a CSRF token is refused by DRF."""
    curator = page_client("Admin", "admin", enforce_csrf_checks=True)
    answer = curator.post("/api/sessions/1/messages/", json.dumps({"content": "hi"}), content_type="application/json")
    assert answer.status_code == 403 and "CSRF" in answer.json()["detail"]
