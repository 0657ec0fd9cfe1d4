"""The API's answers keep their documented shapes where fuzzing found they did not: every refusal
is JSON with a ``detail`` sentence (and ``errors`` by field for invalid input), a path id that is
no row is a JSON 404 whatever it looks like, and a run's steps page by number."""

import json

import pytest

from tests.conftest import api_client
from tests.tasks.conftest import stored_tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_invalid_fields_and_query_parameters_are_a_sentence_and_errors_by_field():
    agent = api_client("Agent", "agent")
    body = agent.post("/api/sessions/", json.dumps({"agent_model": "m"}), content_type="application/json").json()
    assert body == {"detail": "Invalid input: task: This field is required.",
                    "errors": {"task": ["This field is required."]}}
    body = agent.post("/api/sessions/", "[1]", content_type="application/json").json()
    assert body["errors"] == {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}
    assert body["detail"] == "Invalid input: Invalid data. Expected a dictionary, but got list."
    answer = agent.get("/api/domains/?search=%00")  # the search filter's own refusal is a bare list
    assert answer.status_code == 400
    assert answer.json() == {"detail": "Invalid input: Null characters are not allowed.",
                             "errors": {"non_field_errors": ["Null characters are not allowed."]}}
    answer = agent.get("/api/tools/?status=nope")
    assert answer.status_code == 400 and answer.json()["errors"]["status"][0].startswith("Select a valid choice")
    assert agent.get("/api/tasks/").json() == {"detail": "You do not have permission to perform this action."}


@pytest.mark.parametrize("path", ["/api/batches/1.5/", "/api/runs/-7.1e-35/steps/", "/api/sessions/x.y/",
                                  "/api/domains/no.such.domain/", "/api/tasks/%2E%2E/"])
def test_a_path_id_that_is_no_row_is_a_json_404(path):
    answer = api_client("Admin", "admin").get(path)
    assert answer.status_code == 404 and answer["Content-Type"] == "application/json"
    assert set(answer.json()) == {"detail"}


def test_a_runs_steps_page_by_number_and_ignore_the_run_list_filters():
    from environments import batches
    from tasks import services
    from tasks.models import Run

    stored_tasks(seed=13, per_domain=1)
    rollout, _ = services.start_rollout_batch(agent="oracle", which="all", trials=1)
    for item in rollout.items.all():
        batches.run_item(item.pk, worker="test")
    run = Run.objects.first()
    curator = api_client("Curator", "curator")
    page = curator.get(f"/api/runs/{run.pk}/steps/?task=999999").json()  # not a filter of this action
    assert page["count"] == run.step_rows.count() > 0 and page["results"][0]["index"] == 0
    assert curator.get(f"/api/runs/{run.pk}/steps/?page=99").status_code == 404


def test_what_storage_refuses_is_refused_in_a_body_and_inside_string_arguments():
    """NUL characters, lone surrogates and non-finite numbers are a 400 in the body, and an error
    observation inside OpenAI-style string arguments (stored, they broke PostgreSQL's jsonb and
    the run's steps page)."""
    task = next(t for t in stored_tasks(seed=13, per_domain=1) if t.status == "verified")
    agent = api_client("Agent", "agent")
    answer = agent.post("/api/sessions/", json.dumps({"task": task.pk, "agent_model": "a\u0000b"}),
                        content_type="application/json")
    assert answer.status_code == 400 and "NUL character" in answer.json()["detail"]
    session = agent.post("/api/sessions/", json.dumps({"task": task.pk}), content_type="application/json").json()
    step = task.gold_chain[0]
    name = next(iter(step["args"]))
    for text, words in (('{"%s": "\\ud800"}', "lone surrogate"), ('{"%s": "a\\u0000"}', "NUL character"),
                        ('{"%s": NaN}', "not finite"), ('{"%s": 1e400}', "not finite")):
        reply = agent.post(f"/api/sessions/{session['session']}/tool-calls/",
                           json.dumps({"name": step["tool"], "arguments": text % name}),
                           content_type="application/json")
        assert reply.status_code == 200, reply.content
        assert reply.json()["error"] and reply.json()["content"].startswith("Error: InvalidArguments") and \
            words in reply.json()["content"]
    steps = api_client("Curator", "curator").get(f"/api/runs/{session['session']}/steps/")
    assert steps.status_code == 200 and steps.json()["count"] == 5


def test_a_path_no_route_matches_answers_json_under_the_api_and_a_page_elsewhere(db):
    from tests.conftest import api_client, page_client

    client = api_client("Curator", "reader-404")
    for url in ("/api/tasks/a%2Fb/", "/api/nothing-here/"):
        response = client.get(url)
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}, url
    page = page_client("Curator", "pages-404").get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("body", [
    {"name": "find_customer", "arguments": {"email": "a@example.com"}}, {"name": "find_customer"},
    {"name": "find_customer", "arguments": '{"email": "a@example.com"}'}, {"name": " padded "}, {"name": ""},
    {"name": "x" * 200}, {"name": "x" * 201}, {"name": 7}, {"name": None}, {"name": "t", "arguments": [1]},
    {"name": "t", "arguments": None}, {"name": "t", "extra": 1}, [], "text", {},
])
def test_the_fast_path_for_tool_call_bodies_agrees_with_the_serializer(body):
    from tasks.api import ToolCall, _plainly_valid

    fast, reference = _plainly_valid(ToolCall, body), ToolCall(data=body)
    if fast is not None:  # it only ever answers for bodies the serializer accepts, with the same values
        assert reference.is_valid() and dict(reference.validated_data) == fast
    if isinstance(body, dict) and set(body) <= {"name", "arguments"} and isinstance(body.get("name"), str) \
            and body["name"] == body["name"].strip() and 0 < len(body["name"]) <= 200 \
            and isinstance(body.get("arguments", {}), (dict, str)):
        assert fast is not None  # and it does answer for the plain ones


@pytest.mark.parametrize("body", [
    {"content": "hello"}, {"content": ""}, {"content": "  spaced  "}, {"content": "x" * 20000},
    {"content": "x" * 20001}, {"content": None}, {"content": 5}, {"content": "a", "more": 1}, {},
])
def test_the_fast_path_for_message_bodies_agrees_with_the_serializer(body):
    from tasks.api import Message, _plainly_valid

    fast, reference = _plainly_valid(Message, body), Message(data=body)
    if fast is not None:
        assert reference.is_valid() and dict(reference.validated_data) == fast
    else:
        assert not (set(body) == {"content"} and isinstance(body["content"], str) and len(body["content"]) <= 20000)


@pytest.mark.parametrize("body", [
    {"task": 3}, {"task": 3, "agent_model": "gpt", "user": "llm"}, {"task": 3, "agent_model": ""},
    {"task": 3, "agent_model": " padded "}, {"task": 0}, {"task": 2**53}, {"task": True}, {"task": "3"},
    {"task": 3.0}, {"task": 3, "user": "robot"}, {"task": 3, "agent_model": "x" * 121}, {"agent_model": "x"},
    {"task": 3, "other": 1}, [],
])
def test_the_fast_path_for_session_starts_agrees_with_the_serializer(body):
    from tasks.api import StartSession, _plainly_valid

    fast, reference = _plainly_valid(StartSession, body), StartSession(data=body)
    if fast is not None:
        assert reference.is_valid() and dict(reference.validated_data) == fast
    plain = isinstance(body, dict) and set(body) <= {"task", "agent_model", "user"} and type(body.get("task")) is int \
        and 1 <= body["task"] < 2**53 and body.get("user", "scripted") in ("scripted", "llm") \
        and isinstance(body.get("agent_model", ""), str) and len(body.get("agent_model", "")) <= 120 \
        and body.get("agent_model", "") == body.get("agent_model", "").strip()
    assert (fast is not None) == plain


@pytest.mark.parametrize("accept, status", [(None, 200), ("*/*", 200), ("application/json", 200),
                                            ("text/html", 406), ("application/json; q=0.5, text/html", 200),
                                            ("application/xml", 406)])
def test_session_answers_are_json_for_any_accept_that_allows_it_and_406_otherwise(accept, status):
    """The session endpoints skip DRF's negotiation for the common Accept values; the answer is the
    one DRF gives (a 406 for a media type they cannot produce)."""
    task = next(t for t in stored_tasks(seed=13, per_domain=1) if t.status == "verified")
    agent = api_client("Agent", "agent")
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    answer = agent.post("/api/sessions/", json.dumps({"task": task.pk}), content_type="application/json", **headers)
    assert answer.status_code == (201 if status == 200 else 406)
    assert answer["Content-Type"] == "application/json"
    if status == 200:
        assert answer.json()["session"] > 0
    session = agent.post("/api/sessions/", json.dumps({"task": task.pk}), content_type="application/json").json()
    said = agent.post(f"/api/sessions/{session['session']}/messages/", json.dumps({"content": "Hello"}),
                      content_type="application/json", **headers)
    assert said.status_code == status and said["Content-Type"] == "application/json"
    assert set(said.json()) == ({"user", "finished"} if status == 200 else {"detail"})
    as_format = agent.post(f"/api/sessions/{session['session']}/messages/?format=xml", json.dumps({"content": "Hi"}),
                           content_type="application/json")
    assert as_format.status_code == 404  # a format the endpoint does not have: DRF's answer, not a JSON one
