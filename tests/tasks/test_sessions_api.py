"""The HTTP session API: an outside agent plays a task; malformed calls never cause a server error."""

import json

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token

from tasks import services
from tasks.models import Run
from tests.tasks.conftest import stored_tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def task():
    return next(t for t in stored_tasks(seed=9, per_domain=3) if t.status == "verified")


@pytest.fixture
def client():
    token = Token.objects.create(user=User.objects.create_user("agent"))
    return Client(HTTP_AUTHORIZATION=f"Token {token.key}")


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def resolve(args, outputs):
    from environments.runtime.statekit import resolve_refs

    return resolve_refs(args, outputs)


def test_an_outside_agent_plays_the_gold_chain_and_gets_the_reward(task, client):
    started = post(client, "/api/sessions/", {"task": task.pk, "agent_model": "my-model"})
    assert started.status_code == 201
    body = started.json()
    assert body["messages"][1] == {"role": "user", "content": task.instruction}
    assert {t["function"]["name"] for t in body["tools"]} >= {s["tool"] for s in task.gold_chain}
    session = body["session"]
    outputs = []
    for step in task.gold_chain:
        reply = post(client, f"/api/sessions/{session}/tool-calls/",
                     {"name": step["tool"], "arguments": json.dumps(resolve(step["args"], outputs))}).json()
        assert reply["outcome"] == "success", reply
        outputs.append(json.loads(reply["content"]))
    said = " ".join(task.communicate_info)
    done = post(client, f"/api/sessions/{session}/messages/", {"content": f"Done. {said} ###STOP###"}).json()
    assert done["finished"] and done["reward"] == 1.0 and done["termination"] == "agent_stop"
    run = Run.objects.get(pk=session)
    assert run.agent == "external" and run.agent_model == "my-model"
    assert services.replay_run(run)["matches"]
    closed = post(client, f"/api/sessions/{session}/tool-calls/", {"name": task.gold_chain[0]["tool"], "arguments": {}})
    assert closed.status_code == 409


@pytest.mark.parametrize("call, expected", [
    ({"name": "drop_everything", "arguments": {}}, "Error: UnknownTool"),
    ({"name": None, "arguments": {}}, "Error: UnknownTool"),
    ({"name": "TOOL", "arguments": {"unexpected": 1}}, "Error: InvalidArguments"),
    ({"name": "TOOL", "arguments": {}}, "Error: InvalidArguments"),
    ({"name": "TOOL", "arguments": "{not json"}, "Error: InvalidArguments: arguments are not valid JSON"),
    ({"name": "TOOL", "arguments": [1, 2]}, "Error: InvalidArguments: arguments must be a JSON object"),
    ({"name": "TOOL", "arguments": {"WRONGTYPE": 12345}}, "Error: InvalidArguments"),
])
def test_malformed_calls_get_a_clear_error_observation(task, client, call, expected):
    session = post(client, "/api/sessions/", {"task": task.pk}).json()["session"]
    # A tool of the domain with a required string parameter.
    tool_row = next(t for t in task.domain.tools.filter(status="verified").order_by("name")
                    if any(t.parameters["properties"][p].get("type") == "string" for p in t.parameters["required"]))
    tool = tool_row.name
    param = next(p for p in tool_row.parameters["required"] if tool_row.parameters["properties"][p].get("type") == "string")
    arguments = call["arguments"]
    if isinstance(arguments, dict) and "WRONGTYPE" in arguments:
        arguments = {param: 12345}
    reply = post(client, f"/api/sessions/{session}/tool-calls/",
                 {"name": tool if call["name"] == "TOOL" else call["name"], "arguments": arguments})
    assert reply.status_code == 200
    assert reply.json()["error"] is True and reply.json()["content"].startswith(expected)
    assert Run.objects.get(pk=session).tool_errors == 1


def test_huge_payloads_and_bad_bodies_are_refused_cleanly(task, client):
    session = post(client, "/api/sessions/", {"task": task.pk}).json()["session"]
    huge = post(client, f"/api/sessions/{session}/tool-calls/", {"name": "x", "arguments": {"blob": "x" * 400_000}})
    assert huge.status_code == 413 and "over" in huge.json()["error"]
    broken = client.post(f"/api/sessions/{session}/tool-calls/", "{not json", content_type="application/json")
    assert broken.status_code == 400
    missing = post(client, f"/api/sessions/{session}/messages/", {})
    assert missing.status_code == 400
    assert post(client, "/api/sessions/", {"task": 999999}).status_code == 404


def test_sessions_need_a_token_and_belong_to_their_owner(task, client):
    assert Client().post("/api/sessions/", {"task": task.pk}).status_code in (401, 403)
    session = post(client, "/api/sessions/", {"task": task.pk}).json()["session"]
    other = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=User.objects.create_user('other')).key}")
    assert post(other, f"/api/sessions/{session}/finish/", {}).status_code == 404
