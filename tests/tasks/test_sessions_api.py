"""The HTTP session API: an outside agent plays a task through the conversation; calls on a session
are serialized and never lost; finish is final; bad input is a clear 4xx; limits hold."""

import json
import threading

import pytest
from django.db import DatabaseError
from django.test import Client

from tasks import services
from tasks.models import Run, RunStep, Task
from tests.conftest import api_client
from tests.tasks.conftest import stored_tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def task():
    return next(t for t in stored_tasks(seed=9, per_domain=3) if t.status == "verified" and t.kind == "write")


@pytest.fixture
def client():
    return api_client("Agent", "agent")


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def start(client, task):
    response = post(client, "/api/sessions/", {"task": task.pk})
    assert response.status_code == 201, response.content
    return response.json()["session"]


def play(client, task, agent_name="oracle", rewrite=None):
    """Drive a scripted agent through the HTTP session API, as an outside agent would (``rewrite``
    changes the arguments it sends)."""
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
                arguments = rewrite(call["arguments"]) if rewrite else call["arguments"]
                reply = post(client, f"/api/sessions/{session}/tool-calls/",
                             {"name": call["name"], "arguments": json.dumps(arguments)}).json()
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


def read_call(task):
    """The first call of the gold chain (a search by the customer's e-mail: always valid)."""
    step = task.gold_chain[0]
    return {"name": step["tool"], "arguments": step["args"]}


# ---------------------------------------------------------------------------------------------
# Playing


def test_an_outside_agent_talks_to_the_user_plays_the_task_and_gets_the_reward(task, client):
    session, started, done = play(client, task)
    assert started["messages"][0] == {"role": "system", "content": task.domain.policy}  # the agent's prompt
    assert started["messages"][1] == {"role": "user", "content": task.script["opening"]}
    text = json.dumps(started)
    assert "gold_chain" not in text and task.instruction not in text and "s_gt" not in text
    assert {t["function"]["name"] for t in started["tools"]} >= {s["tool"] for s in task.gold_chain}
    assert done["finished"] and done["reward"] == 1.0, done
    assert "full_breakdown" not in done and "expected" not in json.dumps(done)  # no answer key for an agent
    run = Run.objects.get(pk=session)
    assert run.agent == "external" and run.agent_model == "my-model" and run.messages
    assert run.step_rows.filter(kind="user").count() >= 2
    assert services.replay_run(run)["matches"]
    assert post(client, f"/api/sessions/{session}/tool-calls/", read_call(task)).status_code == 409


def test_the_user_over_http_answers_as_in_process_whether_this_process_kept_it_or_rebuilds_it(task, client,
                                                                                              monkeypatch):
    """The scripted user's replies over HTTP are the in-process episode's, both when this process
    kept the user from the last message and when (as if each message went to another server
    process) it is rebuilt from the stored conversation."""
    from tasks import selectors, sessions
    from tasks.instantiation import domain_bundle
    from tasks.rollout.agents import AGENTS
    from tasks.rollout.episode import run_episode
    from tasks.spec import build_task_spec

    spec = build_task_spec(selectors.domain_view(task.domain), task)
    with services.sandbox_pool().lease(domain_bundle(selectors.domain_view(task.domain))) as sandbox:
        episode = run_episode(spec, AGENTS["oracle"](spec), sandbox)
    in_process = [m["content"] for m in episode.messages[1:] if m["role"] == "user"]  # the opening first
    assert len(in_process) >= 2

    def replies(session):
        return list(RunStep.objects.filter(run_id=session, kind="user").order_by("index").values_list("content",
                                                                                                      flat=True))

    replays = []
    real_replay = sessions.ScriptedUser.replay
    monkeypatch.setattr(sessions.ScriptedUser, "replay", lambda *a: replays.append(1) or real_replay(*a))
    kept_session, _, kept = play(client, task)
    assert replays == []  # the user was kept across the tool calls between messages
    monkeypatch.setattr(sessions._users, "take", lambda run_id, answered: None)
    monkeypatch.setattr(sessions._states, "get", lambda run_id, version: None)
    rebuilt_session, _, rebuilt = play(client, task)
    assert len(replays) == len(in_process) - 1  # every reply after the opening
    # The step queries ran as statements compiled once, not through the ORM each time.
    assert {"earlier messages", "successful diffs", "conversation"} <= {name for name, _ in sessions._compiled}
    assert all(sessions._compiled.values())
    assert replies(kept_session) == replies(rebuilt_session) == in_process
    assert rebuilt["reward"] == kept["reward"] == episode.reward == 1.0
    assert Run.objects.get(pk=rebuilt_session).final_hash == Run.objects.get(pk=kept_session).final_hash == (
        episode.final_hash)


def test_an_outside_agent_that_does_nothing_gets_nothing(task, client):
    _session, _started, done = play(client, task, "null")
    assert done["reward"] == 0.0


def test_the_session_shows_its_conversation_to_its_owner(task, client):
    session = start(client, task)
    post(client, f"/api/sessions/{session}/tool-calls/", read_call(task))
    body = client.get(f"/api/sessions/{session}/").json()
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool"]
    assert body["termination"] == "running" and body["step_count"] == 2


@pytest.mark.parametrize("call, expected", [
    ({"name": "drop_everything", "arguments": {}}, "Error: UnknownTool"),
    ({"name": "TOOL", "arguments": {"unexpected": 1}}, "Error: InvalidArguments"),
    ({"name": "TOOL", "arguments": {}}, "Error: InvalidArguments"),
    ({"name": "TOOL", "arguments": "{not json"}, "Error: InvalidArguments: arguments are not valid JSON"),
    ({"name": "TOOL", "arguments": [1, 2]}, "Error: InvalidArguments: arguments must be a JSON object"),
    ({"name": "TOOL", "arguments": {"WRONGTYPE": 12345}}, "Error: InvalidArguments"),
])
def test_malformed_calls_get_a_clear_error_observation(task, client, call, expected):
    session = start(client, task)
    tool_row = next(t for t in task.domain.tools.filter(status="verified").order_by("name")
                    if any(t.parameters["properties"][p].get("type") == "string" for p in t.parameters["required"]))
    param = next(p for p in tool_row.parameters["required"] if tool_row.parameters["properties"][p].get("type") == "string")
    arguments = call["arguments"]
    if isinstance(arguments, dict) and "WRONGTYPE" in arguments:
        arguments = {param: 12345}
    reply = post(client, f"/api/sessions/{session}/tool-calls/",
                 {"name": tool_row.name if call["name"] == "TOOL" else call["name"], "arguments": arguments})
    assert reply.status_code == 200
    assert reply.json()["error"] is True and reply.json()["content"].startswith(expected)
    assert Run.objects.get(pk=session).tool_errors == 1


# ---------------------------------------------------------------------------------------------
# Bad input: a clear 4xx, and nothing stored that breaks a page


@pytest.mark.parametrize("raw, status, words", [
    (b'{"name": "x\\ud800", "arguments": {}}', 400, "lone surrogate"),
    (b'{"name": "\xff\xfe", "arguments": {}}', 400, "not valid UTF-8"),
    (b'{"name": "x", "arguments": ' + b"[" * 1000 + b"]" * 1000 + b"}", 400, "nested deeper"),
    (b'{"name": "x", "arguments": {"n": NaN}}', 400, "NaN is not valid JSON"),
    (b'{"name": "x", "arguments": {"n": 123456789012345678901234567890}}', 400, "out of range"),
    (b'{"name": "x", "arguments": {"blob": "' + b"x" * 400_000 + b'"}}', 413, "over"),
    (b"{not json", 400, "JSON parse error"),
])
def test_bad_bodies_are_refused_with_a_clear_error_and_nothing_stored(task, client, raw, status, words):
    session = start(client, task)
    response = client.post(f"/api/sessions/{session}/tool-calls/", raw, content_type="application/json")
    assert response.status_code == status and words in response.json()["detail"]
    assert Run.objects.get(pk=session).step_count == 1  # only the user's opening
    page = api_client("Curator", "curator").get(f"/api/runs/{session}/")
    assert page.status_code == 200


def test_oversized_arguments_and_observations_are_capped_and_marked(task, client, settings):
    settings.SCALEENV_SESSION_MAX_OBSERVATION_CHARS = 40
    settings.SCALEENV_SESSION_MAX_ARGUMENT_BYTES = 200
    session = start(client, task)
    reply = post(client, f"/api/sessions/{session}/tool-calls/", read_call(task)).json()
    assert reply["truncated"] and "…[truncated" in reply["content"] and len(reply["content"]) < 90
    settings.SCALEENV_SESSION_MAX_OBSERVATION_CHARS = 16_000
    big = post(client, f"/api/sessions/{session}/tool-calls/",
               {"name": read_call(task)["name"], "arguments": {"email": "x" * 500}}).json()
    assert big["error"] and "over 200 bytes" in big["content"]
    stored = RunStep.objects.get(run_id=session, index=2)
    assert "truncated" in json.dumps(stored.arguments)


# ---------------------------------------------------------------------------------------------
# Concurrency


def test_eight_threads_on_one_session_store_every_acknowledged_call_in_order(task, client):
    session = start(client, task)
    call = read_call(task)
    acknowledged: list[str] = []
    errors: list[str] = []

    def worker(n: int) -> None:
        own = Client(HTTP_AUTHORIZATION=client.defaults["HTTP_AUTHORIZATION"])
        for i in range(5):
            email = call["arguments"]["email"] if (n + i) % 2 == 0 else f"nobody{n}-{i}@example.com"
            response = post(own, f"/api/sessions/{session}/tool-calls/",
                            {"name": call["name"], "arguments": {**call["arguments"], "email": email}})
            if response.status_code != 200:
                errors.append(f"{response.status_code} {response.content[:200]}")
            else:
                acknowledged.append((response.json()["tool_call_id"], email))
        from django.db import connection

        connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(acknowledged) == 40
    steps = list(RunStep.objects.filter(run_id=session, kind="tool_call").order_by("index"))
    assert [s.index for s in steps] == list(range(1, 41))  # contiguous: no lost or doubled call
    stored = {f"call_{s.index}": s.arguments["email"] for s in steps}
    assert stored == dict(acknowledged)  # every acknowledged call is the stored one
    assert Run.objects.get(pk=session).step_count == 41


def test_finish_is_final_even_when_it_races_tool_calls(task, client):
    session = start(client, task)
    call = read_call(task)
    statuses: list[int] = []
    finished = threading.Event()

    def caller() -> None:
        own = Client(HTTP_AUTHORIZATION=client.defaults["HTTP_AUTHORIZATION"])
        for _ in range(12):
            statuses.append(post(own, f"/api/sessions/{session}/tool-calls/", call).status_code)
        from django.db import connection

        connection.close()

    def finisher() -> None:
        own = Client(HTTP_AUTHORIZATION=client.defaults["HTTP_AUTHORIZATION"])
        assert post(own, f"/api/sessions/{session}/finish/", {}).status_code == 200
        finished.set()
        from django.db import connection

        connection.close()

    threads = [threading.Thread(target=caller) for _ in range(3)] + [threading.Thread(target=finisher)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run = Run.objects.get(pk=session)
    assert run.termination == "agent_stop" and set(statuses) <= {200, 409}
    stored = RunStep.objects.filter(run_id=session).count()
    assert stored == run.step_count == 1 + statuses.count(200)  # nothing after the finish was stored
    # After finishing, no call, message or second finish changes anything.
    for task_call in task.gold_chain:
        assert post(client, f"/api/sessions/{session}/tool-calls/",
                    {"name": task_call["tool"], "arguments": {}}).status_code == 409
    assert post(client, f"/api/sessions/{session}/messages/", {"content": "hello"}).status_code == 409
    again = post(client, f"/api/sessions/{session}/finish/", {}).json()
    run.refresh_from_db()
    assert again["reward"] == run.reward == 0.0 and RunStep.objects.filter(run_id=session).count() == stored


def test_sessions_of_different_tasks_at_once_see_only_their_own_rows(client):
    tasks = [t for t in stored_tasks(seed=21, per_domain=6) if t.status == "verified"][:4]
    results: dict[int, tuple[int, str]] = {}

    def player(t) -> None:
        own = Client(HTTP_AUTHORIZATION=client.defaults["HTTP_AUTHORIZATION"])
        session = start(own, t)
        content = post(own, f"/api/sessions/{session}/tool-calls/", read_call(t)).json()["content"]
        results[t.pk] = (session, content)
        from django.db import connection

        connection.close()

    threads = [threading.Thread(target=player, args=(t,)) for t in tasks]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for t in tasks:
        _session, content = results[t.pk]
        found = json.loads(content)["items"]
        assert [row["email"] for row in found] == [t.user_profile["email"]]  # its own customer, nobody else's


# ---------------------------------------------------------------------------------------------
# Limits and scopes


def test_an_idle_session_expires_and_is_recorded_as_such(task, client, settings):
    session = start(client, task)
    settings.SCALEENV_SESSION_IDLE_SECONDS = -1  # already idle for too long
    response = post(client, f"/api/sessions/{session}/tool-calls/", read_call(task))
    assert response.status_code == 409 and "expired" in response.json()["detail"]
    run = Run.objects.get(pk=session)
    assert run.termination == "expired" and run.reward == 0.0


def test_expire_sessions_finishes_only_the_idle_ones(task, client, settings):
    from io import StringIO

    from django.core.management import call_command
    from django.utils import timezone

    idle, active = start(client, task), start(client, task)
    Run.objects.filter(pk=idle).update(last_activity_at=timezone.now() - timezone.timedelta(hours=2))
    settings.SCALEENV_SESSION_IDLE_SECONDS = 3600
    out = StringIO()
    call_command("expire_sessions", stdout=out)
    assert "expired 1 sessions" in out.getvalue()
    assert Run.objects.get(pk=idle).termination == "expired" and Run.objects.get(pk=active).termination == "running"


def test_a_token_may_hold_only_so_many_open_sessions(task, client, settings):
    settings.SCALEENV_SESSION_MAX_OPEN = 2
    start(client, task)
    last = start(client, task)
    third = post(client, "/api/sessions/", {"task": task.pk})
    assert third.status_code == 429 and "2 open sessions" in third.json()["detail"]
    post(client, f"/api/sessions/{last}/finish/", {})
    assert post(client, "/api/sessions/", {"task": task.pk}).status_code == 201


def test_at_the_cap_an_idle_session_is_expired_to_make_room(task, client, settings):
    from django.utils import timezone

    settings.SCALEENV_SESSION_MAX_OPEN = 2
    settings.SCALEENV_SESSION_IDLE_SECONDS = 3600
    idle, busy = start(client, task), start(client, task)
    Run.objects.filter(pk=idle).update(last_activity_at=timezone.now() - timezone.timedelta(hours=2))
    assert post(client, "/api/sessions/", {"task": task.pk}).status_code == 201
    assert Run.objects.get(pk=idle).termination == "expired" and Run.objects.get(pk=busy).termination == "running"
    assert post(client, "/api/sessions/", {"task": task.pk}).status_code == 429  # nothing idle left to expire


def test_a_session_ends_at_its_step_limit(task, client, settings):
    settings.SCALEENV_SESSION_MAX_STEPS = 3
    session = start(client, task)
    for _ in range(2):
        assert post(client, f"/api/sessions/{session}/tool-calls/", read_call(task)).status_code == 200
    closed = post(client, f"/api/sessions/{session}/tool-calls/", read_call(task))
    assert closed.status_code == 409 and Run.objects.get(pk=session).termination == "max_steps"


def test_sessions_need_an_agent_token_and_belong_to_their_owner(task, client):
    assert Client().post("/api/sessions/", {"task": task.pk}, content_type="application/json").status_code == 401
    assert post(api_client("Viewer", "viewer"), "/api/sessions/", {"task": task.pk}).status_code == 403
    session = start(client, task)
    other = api_client("Agent", "other")
    assert other.get(f"/api/sessions/{session}/").status_code == 404
    assert post(other, f"/api/sessions/{session}/finish/", {}).status_code == 404
    assert post(other, f"/api/sessions/{session}/tool-calls/", read_call(task)).status_code == 404
    assert post(client, "/api/sessions/", {"task": 999999}).status_code == 404


def test_a_call_whose_transaction_fails_leaves_the_session_where_it_was(task, client):
    """The sandbox ran a write but its step could not be stored: the session's state and the
    sandbox's mark both stay at the last stored call, so the retried write applies once."""
    from tasks import selectors, sessions
    from tasks.instantiation import domain_bundle

    session = start(client, task)
    owner = Run.objects.get(pk=session).owner
    mutating = set(sessions._spec(task).mutating)
    write = next(i for i, call in enumerate(task.gold_calls) if call["tool"] in mutating)
    for call in task.gold_calls[:write]:
        assert sessions.call_tool(session, owner, call["tool"], call["args"])["outcome"] == "success"
    written = task.gold_calls[write]
    # The step insert fails after the session row was moved on (or, on PostgreSQL, in the one
    # statement that moves it): nothing of the call may stay.
    from django.db import connection

    def failing_step_insert(execute, sql, params, many, context):  # Django's hook around every statement
        if f'INSERT INTO "{RunStep._meta.db_table}"' in sql:  # alone, or fed by the UPDATE (PostgreSQL)
            raise DatabaseError("disk gone")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(failing_step_insert):
        with pytest.raises(DatabaseError):
            sessions.call_tool(session, owner, written["tool"], written["args"])
    assert Run.objects.get(pk=session).state_version == write  # the failed call left no trace
    assert sessions.call_tool(session, owner, written["tool"], written["args"])["outcome"] == "success"

    expected = services.sandbox_pool().get(domain_bundle(selectors.domain_view(task.domain))).run_sequence(
        task.gold_calls[:write + 1], state=task.s0, return_state=True)["state"]
    run = Run.objects.get(pk=session)
    assert run.state_version == write + 1
    assert sessions._state(run).state == expected  # what this process keeps
    sessions._states.drop(run.pk)
    assert sessions._state(run).state == expected  # what any process rebuilds from the stored steps


def test_a_call_that_loses_the_race_is_redone_on_the_new_state_and_stored_once(task, client, monkeypatch):
    """Another process's call commits between this call's snapshot and its commit: the version
    check refuses the stale attempt, which is redone on the session's new state; both calls are
    stored in order, and the state is the two calls applied one after the other."""
    from tasks import selectors, sessions
    from tasks.instantiation import domain_bundle

    session = start(client, task)
    owner = Run.objects.get(pk=session).owner
    first, second = task.gold_calls[0], task.gold_calls[min(1, len(task.gold_calls) - 1)]
    real_snapshot, snapshots = sessions._snapshot, []

    def snapshot_then_interloper(run_id, who):
        run = real_snapshot(run_id, who)
        snapshots.append(run.step_count)
        if len(snapshots) == 1:  # the other process: a whole call, committed, on the same session
            interloper = real_snapshot(run_id, who)
            assert sessions._try_call(interloper, first["tool"], first["args"])["tool_call_id"] == "call_1"
        return run

    monkeypatch.setattr(sessions, "_snapshot", snapshot_then_interloper)
    answer = sessions.call_tool(session, owner, second["tool"], second["args"])
    assert snapshots == [1, 2]  # the stale attempt, then the redo on the new snapshot
    assert answer["tool_call_id"] == "call_2" and answer["outcome"] == "success"
    steps = list(RunStep.objects.filter(run_id=session, kind="tool_call").order_by("index"))
    assert [(s.index, s.tool) for s in steps] == [(1, first["tool"]), (2, second["tool"])]
    expected = services.sandbox_pool().get(domain_bundle(selectors.domain_view(task.domain))).run_sequence(
        [first, second], state=task.s0, return_state=True)["state"]
    run = Run.objects.get(pk=session)
    assert run.state_version == 2 and run.step_count == 3
    sessions._states.drop(run.pk)
    assert sessions._state(run).state == expected


def test_a_session_kept_busy_past_the_patience_answers_409_and_stores_nothing(task, client, monkeypatch, settings):
    from tasks import sessions

    session = start(client, task)
    owner = Run.objects.get(pk=session).owner
    settings.SCALEENV_SESSION_BUSY_SECONDS = 0.05
    monkeypatch.setattr(sessions, "_advance", lambda run, steps, **extra: False)  # always someone else first
    call = task.gold_calls[0]
    with pytest.raises(sessions.SessionBusy):
        sessions.call_tool(session, owner, call["tool"], call["args"])
    assert RunStep.objects.filter(run_id=session).count() == 1 and Run.objects.get(pk=session).step_count == 1


def test_a_start_answers_the_same_body_as_rendering_it_afresh(task, client):
    """The start body is rendered once per task and process: a second start of the same task gets
    its own session id and exactly the messages and tools a fresh rendering gives."""
    from tasks import sessions

    first = post(client, "/api/sessions/", {"task": task.pk})
    second = post(client, "/api/sessions/", {"task": task.pk})
    assert first.status_code == second.status_code == 201 and first["Content-Type"] == "application/json"
    a, b = first.json(), second.json()
    assert a["session"] != b["session"] and a["messages"] == b["messages"] and a["tools"] == b["tools"]
    run = Run.objects.select_related("task", "task__domain").get(pk=b["session"])
    spec = sessions._spec(run.task)
    assert b["tools"] == json.loads(json.dumps(spec.tools))
    assert b["messages"] == json.loads(json.dumps(sessions.messages_of(run)))  # what the session holds


def test_the_snapshot_loads_the_session_as_the_orm_would(task, client):
    """The hot path builds its instances without Model.__init__: the same attributes, the same
    deferred columns (loaded on access), the task and domain in place, and no init listeners missed."""
    from django.db.models.signals import post_init, pre_init

    from environments.models import Domain
    from tasks import sessions

    session = start(client, task)
    owner = Run.objects.get(pk=session).owner
    snapshot = sessions._snapshot(session, owner)
    names, _ = sessions._snapshot_layout()
    orm = Run.objects.only(*names).get(pk=session)
    assert {n: getattr(snapshot, n) for n in names} == {n: getattr(orm, n) for n in names}
    assert snapshot.get_deferred_fields() == orm.get_deferred_fields() and "final_state" in orm.get_deferred_fields()
    assert not snapshot._state.adding and snapshot._state.db == orm._state.db == "default"
    assert snapshot.agent_model == orm.agent_model  # a deferred column, read on access
    assert (snapshot.task.pk, snapshot.task.content_hash, snapshot.task.domain.slug) == (
        task.pk, task.content_hash, task.domain.slug)
    assert snapshot.task.instruction == task.instruction  # deferred on the task, read on access
    for model in (Run, Task, Domain):
        assert not pre_init.has_listeners(model) and not post_init.has_listeners(model), model


@pytest.mark.parametrize("values", [
    {"kind": RunStep.Kind.MESSAGE, "content": "Please cancel it."},
    {"kind": RunStep.Kind.TOOL_CALL, "tool": "get_member", "arguments": {"id": "M-1"}, "outcome": "success",
     "observation": "{}", "diff": {"members": {}}, "duration_ms": 1.5, "executed": False}])
def test_new_steps_are_the_instances_the_orm_would_make(values):
    """The hot path makes its steps without Model.__init__: the same attributes and defaults, a
    default made per row (not one dict shared by every step), a new unsaved instance, no init
    listeners missed."""
    from django.db.models.signals import post_init, pre_init

    from tasks.sessions import _new_row

    made, orm = _new_row(RunStep, **values), RunStep(**values)
    assert {k: v for k, v in made.__dict__.items() if k != "_state"} == {
        k: v for k, v in orm.__dict__.items() if k != "_state"}
    assert made._state.adding and made._state.db is None and made.pk is None
    if "diff" not in values:
        assert made.diff == {} and _new_row(RunStep, **values).diff is not made.diff
    assert not pre_init.has_listeners(RunStep) and not post_init.has_listeners(RunStep)


def test_the_task_a_start_reads_has_its_own_columns_where_they_belong(task):
    """session_task reads three columns of the task and three of its domain: each lands on its own
    attribute (Model.from_db would have put them in field order and swapped them)."""
    from tasks import sessions

    loaded = sessions.session_task(task.pk)
    assert (loaded.pk, loaded.content_hash, loaded.domain_id) == (task.pk, task.content_hash, task.domain_id)
    assert (loaded.domain.pk, loaded.domain.spec_hash, loaded.domain.slug) == (
        task.domain.pk, task.domain.spec_hash, task.domain.slug)
    assert sessions.session_task(10**9) is None


def test_statements_run_the_same_with_and_without_djangos_query_recording():
    """sessions._run skips Django's per-statement placeholder rewrite on SQLite unless queries are
    recorded or wrapped; both ways give the same rows, a literal %% included, and recording sees it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tasks.sessions import _run

    statement = "SELECT %s, '100%%', %s || 'b'"
    with connection.cursor() as cursor:
        _run(cursor, statement, [7, "a"])
        fast = cursor.fetchone()
    with CaptureQueriesContext(connection) as recorded, connection.cursor() as cursor:
        _run(cursor, statement, [7, "a"])
        logged = cursor.fetchone()
    assert fast == logged == (7, "100%", "ab")
    assert len(recorded) == 1


def adapted(value):
    """A prepared value, comparable: psycopg's JSON wrapper (PostgreSQL) compares by identity."""
    from psycopg.types.json import Jsonb

    return ("jsonb", value.obj) if isinstance(value, Jsonb) else value


@pytest.mark.parametrize("arguments", [{"a": [1, 2.5, None, "é"]}, [1, {"b": True}], None, "text", 3])
def test_a_steps_insert_prepares_each_value_as_its_field_would(task, client, arguments):
    """sessions._insert_statement skips Django's field preparation where it knows the result (plain
    values of a column's own type; on SQLite a JSON column's dict or list): each value must be what
    the field itself makes of it, and the row must read back as saved."""
    from django.db import connection

    from tasks.sessions import _insert_columns, _insert_statement

    run = Run.objects.get(pk=start(client, task))
    step = RunStep(run=run, index=5, kind=RunStep.Kind.TOOL_CALL, tool="t", arguments=arguments, outcome="success",
                   observation="o", diff={"x": [1]}, content="", duration_ms=1.5, executed=True)
    statement, values = _insert_statement(connection, [step])
    fields, _ = _insert_columns(RunStep, connection.vendor)
    # (add=False: the creation stamp the statement set, not a new one)
    assert [adapted(v) for v in values] == [
        adapted(f.get_db_prep_save(f.pre_save(step, False), connection)) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(statement, values)
    stored = RunStep.objects.get(run=run, index=5)
    assert (stored.arguments, stored.diff, stored.duration_ms, stored.executed) == (arguments, {"x": [1]}, 1.5, True)


@pytest.mark.parametrize("moment", [
    "2026-03-02T09:00:00+00:00", "2026-03-02T09:00:00.000250+00:00", "2026-11-26T23:59:59.999999+05:30",
    "2026-03-29T01:30:00.5-08:00"])
def test_datetimes_are_prepared_as_their_field_would(moment):
    """sessions._preparer writes an aware datetime's text itself on SQLite: the same text as the
    field's own preparation, whatever the zone and microseconds."""
    from datetime import datetime

    from django.db import connection

    from tasks.sessions import _preparer

    value = datetime.fromisoformat(moment)
    for field in (Run._meta.get_field("last_activity_at"), RunStep._meta.get_field("created_at")):
        assert adapted(_preparer(field, connection.vendor)(value, connection)) == adapted(
            field.get_db_prep_save(value, connection))


def test_a_final_state_is_dumped_once_for_its_hash_and_stored_as_the_same_json(task):
    """The final state's canonical JSON gives its hash and, on SQLite, is the stored text: it must
    be the same JSON as the field's own preparation and read back equal; the hash is state_hash's."""
    from django.db import connection

    from environments.runtime import statekit
    from tasks.sessions import _CanonicalState, _preparer

    state = {"zeta": {"r2": {"b": [1, {"c": None}], "a": "é\u2028"}}, "alpha": {"r1": {"x": 2.5, "y": True}}}
    final = _CanonicalState(state)
    assert final == state and final.hash == statekit.state_hash(state)
    field = Run._meta.get_field("final_state")
    prepared, own = _preparer(field, connection.vendor)(final, connection), field.get_db_prep_save(state, connection)
    if connection.vendor == "sqlite":
        assert prepared == final.text and json.loads(prepared) == json.loads(own)
    else:
        assert adapted(prepared) == adapted(own)
    run = Run.objects.create(task=task, agent="external", step_count=0)
    Run.objects.filter(pk=run.pk).update(final_state=final)
    assert Run.objects.get(pk=run.pk).final_state == state


def test_a_session_update_prepares_each_value_as_its_field_would():
    """_advance's UPDATE prepares the finishing columns with sessions._preparer: the same values as
    the fields' own preparation, JSON columns of every shape included."""
    from datetime import datetime, timezone as dt_timezone

    from django.db import connection

    from tasks.sessions import _preparer

    values = {"step_count": 7, "last_activity_at": datetime(2026, 3, 2, 9, tzinfo=dt_timezone.utc),
              "termination": Run.Termination.USER_STOP, "reward": 1.0, "breakdown": {"db_match": True, "x": [1, None]},
              "final_state": {"t": {"r1": {"a": "é", "b": 2.5}}}, "final_hash": "ab" * 32,
              "messages": [{"role": "user", "content": "hi"}], "seconds": 0.25, "state_version": 3,
              "agent_messages": 2}
    for name, value in values.items():
        field = Run._meta.get_field(name)
        assert adapted(_preparer(field, connection.vendor)(value, connection)) == adapted(
            field.get_db_prep_save(value, connection)), name
