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


def play(client, task, agent_name="oracle"):
    """Drive a scripted agent through the HTTP session API, as an outside agent would."""
    from tasks import selectors
    from tasks.rollout.agents import AGENTS
    from tasks.spec import build_task_spec

    spec = build_task_spec(selectors.domain_view(task.domain), task)
    agent = AGENTS[agent_name](spec)
    started = post(client, "/api/sessions/", {"task": task.pk, "agent_model": "my-model"})
    assert started.status_code == 201
    body = started.json()
    session, messages, observations = body["session"], list(body["messages"]), []
    for _ in range(60):
        action = agent.act(messages, observations)
        if action.get("tool_calls"):
            for call in action["tool_calls"]:
                reply = post(client, f"/api/sessions/{session}/tool-calls/",
                             {"name": call["name"], "arguments": json.dumps(call["arguments"])}).json()
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
                messages.append({"role": "tool", "content": reply["content"]})
                value = json.loads(reply["content"]) if not reply["error"] else None
                observations.append({"tool": call["name"], "arguments": call["arguments"],
                                     "result": {"outcome": reply["outcome"], "value": value}})
            continue
        reply = post(client, f"/api/sessions/{session}/messages/", {"content": action["content"]}).json()
        messages.append({"role": "assistant", "content": action["content"]})
        if reply.get("user"):
            messages.append({"role": "user", "content": reply["user"]})
        if reply["finished"]:
            return session, body, reply
    raise AssertionError("the conversation did not end")


def test_an_outside_agent_talks_to_the_user_plays_the_task_and_gets_the_reward(task, client):
    session, started, done = play(client, task)
    assert started["messages"][0] == {"role": "system", "content": task.domain.policy}  # the agent's prompt
    assert started["messages"][1] == {"role": "user", "content": task.script["opening"]}
    assert "gold_chain" not in json.dumps(started) and task.instruction not in json.dumps(started)
    assert {t["function"]["name"] for t in started["tools"]} >= {s["tool"] for s in task.gold_chain}
    assert all(t["function"]["description"] != t["function"]["name"] for t in started["tools"])
    assert done["finished"] and done["reward"] == 1.0, done
    run = Run.objects.get(pk=session)
    assert run.agent == "external" and run.agent_model == "my-model"
    assert [s["kind"] for s in run.steps].count("user") >= 1
    assert services.replay_run(run)["matches"]
    closed = post(client, f"/api/sessions/{session}/tool-calls/", {"name": task.gold_chain[0]["tool"], "arguments": {}})
    assert closed.status_code == 409


def test_an_outside_agent_that_does_nothing_gets_nothing(task, client):
    _session, _started, done = play(client, task, "null")
    assert done["reward"] == 0.0


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
