"""The trainers' client (tasks/client.py) against a real server: pytest-django's live server, a real
Agent token, tasks made by the real pipeline, the engine's own oracle agent driving the env."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import gymnasium
import pytest
from gymnasium.error import InvalidAction, ResetNeeded
from gymnasium.utils.env_checker import check_env

from tasks.client import STOP, EpisodeOver, ScaleEnvEnv, SessionAPIError, SessionClient
from tests.conftest import account
from tests.tasks.conftest import stored_tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def token():
    from rest_framework.authtoken.models import Token

    return Token.objects.get_or_create(user=account("Agent", "trainer"))[0].key


@pytest.fixture
def tasks():
    """Verified tasks of every kind: writes, questions (the answer must be said), refusals."""
    made = [t for t in stored_tasks(seed=21, per_domain=6) if t.status == "verified"]
    assert {t.kind for t in made} == {"write", "question", "refusal"}
    return made


@pytest.fixture
def env(live_server, token):
    with ScaleEnvEnv(live_server.url, token) as made:
        yield made


def oracle_action(agent, chat, observations):
    """The engine's oracle (tasks/rollout/agents.py) deciding its next move from the env's
    observation, turned into an env action."""
    move = agent.act(chat, observations)
    if move.get("tool_calls"):
        (call,) = move["tool_calls"]
        return call
    return {"message": move["content"]}


def play_oracle(env, task, openai_style=False):
    """One episode of the oracle through the env. The oracle reads the tool results it got as
    values; the env gives them as the tool messages' text (JSON)."""
    from tasks import selectors
    from tasks.rollout.agents import AGENTS
    from tasks.spec import build_task_spec

    agent = AGENTS["oracle"](build_task_spec(selectors.domain_view(task.domain), task))
    chat, info = env.reset(options={"task": task.pk})
    observations = []
    for _ in range(60):
        move = oracle_action(agent, chat, observations)
        if "name" in move:
            function = {"name": move["name"], "arguments": json.dumps(move["arguments"])}
            action = ({"type": "function", "function": function} if openai_style
                      else {"tool": move["name"], "arguments": move["arguments"]})
        else:
            action = move
        chat, reward, terminated, truncated, info = env.step(action)
        if "name" in move:
            answer = info["response"]
            try:
                value = json.loads(answer["content"])
            except json.JSONDecodeError:
                value = answer["content"]
            observations.append({"tool": move["name"], "arguments": move["arguments"],
                                 "result": {"outcome": answer["outcome"], "value": None if answer["error"] else value}})
        if terminated or truncated:
            return chat, reward, terminated, truncated, info
    raise AssertionError("the episode did not end")


# ---------------------------------------------------------------------------------------------
# Episodes


def test_the_oracle_earns_1_on_every_kind_of_task_through_the_env(env, tasks, live_server, token):
    sessions = []
    for n, task in enumerate(tasks):
        chat, reward, terminated, truncated, info = play_oracle(env, task, openai_style=n % 2 == 1)
        assert (reward, terminated, truncated) == (1.0, True, False), (task.kind, task.intent, info)
        assert info["termination"] in ("user_stop", "agent_stop") and info["breakdown"]["failing_tables"] == []
        assert isinstance(reward, float)
        assert chat in env.observation_space
        # The env's conversation is the session's record, message for message.
        with SessionClient(live_server.url, token) as client:
            record = client.get(env.session)
        assert record["messages"] == chat and record["reward"] == 1.0 and record["task"] == task.pk
        sessions.append(env.session)
    assert len(set(sessions)) == len(tasks)


def test_reset_gives_the_policy_the_opening_and_the_tools(env, tasks):
    task = tasks[0]
    chat, info = env.reset(options={"task": task.pk})
    assert [m["role"] for m in chat] == ["system", "user"]
    assert chat[0]["content"] == task.domain.policy and chat[1]["content"] == task.script["opening"]
    assert info["task"] == task.pk and info["session"] == env.session
    names = {t["function"]["name"] for t in info["tools"]}
    assert names >= {s["tool"] for s in task.gold_chain}
    assert all(t["type"] == "function" and "parameters" in t["function"] for t in info["tools"])
    assert "gold_chain" not in json.dumps([chat, info])


def test_an_agent_that_just_stops_earns_nothing_and_the_episode_is_over(env, tasks):
    with pytest.raises(ResetNeeded, match="reset"):
        env.step({"message": "hello"})
    env.reset(options={"task": tasks[0].pk})
    chat, reward, terminated, truncated, info = env.step({"message": STOP})
    assert (reward, terminated, truncated) == (0.0, True, False)
    assert info["termination"] == "agent_stop" and chat[-1] == {"role": "assistant", "content": STOP}
    with pytest.raises(EpisodeOver, match="is over .*agent_stop.*reset"):
        env.step({"message": "one more thing"})
    assert issubclass(EpisodeOver, ResetNeeded)


def test_finishing_ends_the_episode_with_the_reward(env, tasks):
    env.reset(options={"task": tasks[0].pk})
    _chat, reward, terminated, truncated, info = env.step({"finish": True})
    assert (reward, terminated, truncated, info["termination"]) == (0.0, True, False, "agent_stop")


def test_bad_tool_calls_are_error_observations_not_exceptions(env, tasks):
    task = tasks[0]
    env.reset(options={"task": task.pk})
    chat, reward, terminated, truncated, info = env.step({"tool": "drop_everything", "arguments": {}})
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert chat[-1]["role"] == "tool" and chat[-1]["content"].startswith("Error: UnknownTool")
    assert chat[-2]["tool_calls"][0]["function"]["name"] == "drop_everything"
    assert info["response"]["error"] is True and info["response"]["outcome"] == "anticipated_rejection"
    tool = task.gold_chain[0]["tool"]
    chat, *_rest, info = env.step({"tool": tool, "arguments": "{not json"})
    assert chat[-1]["content"].startswith("Error: InvalidArguments: arguments are not valid JSON")
    # Refused by the server before reaching the session (a blank name): still an observation.
    chat, reward, terminated, truncated, info = env.step({"tool": "", "arguments": {}})
    assert chat[-1]["content"].startswith("Error: InvalidRequest") and info["refused"] is True
    assert not terminated and not truncated
    # An action of no known form is the caller's bug: an exception, and nothing is sent.
    for bad in ({"name": tool}, {"tool": tool, "args": {}}, {"message": 3}, {"finish": False}, 42,
                {"type": "function", "function": {"arguments": "{}"}}):
        assert bad not in env.action_space
        with pytest.raises(InvalidAction):
            env.step(bad)
    _chat, reward, terminated, _truncated, info = env.step(f"Sorry, I can't help. {STOP}")  # a bare string
    assert terminated and reward == 0.0


def test_the_servers_step_limit_truncates_the_episode(env, tasks, settings):
    settings.SCALEENV_SESSION_MAX_STEPS = 3  # the opening, then two calls
    call = {"tool": tasks[0].gold_chain[0]["tool"], "arguments": tasks[0].gold_chain[0]["args"]}
    env.reset(options={"task": tasks[0].pk})
    for _ in range(2):
        assert env.step(call)[2:4] == (False, False)
    before = len(env._chat)
    chat, reward, terminated, truncated, info = env.step(call)
    assert (reward, terminated, truncated, info["termination"]) == (0.0, False, True, "max_steps")
    assert "reached 3 steps" in info["response"]["detail"] and len(chat) == before  # the refused call is not shown
    with pytest.raises(EpisodeOver):
        env.step(call)


def test_the_envs_own_step_limit_truncates_and_frees_the_session(live_server, token, tasks):
    call = {"tool": tasks[0].gold_chain[0]["tool"], "arguments": tasks[0].gold_chain[0]["args"]}
    with ScaleEnvEnv(live_server.url, token, task=tasks[0].pk, max_steps=2) as env:
        env.reset()
        assert env.step(call)[2:4] == (False, False)
        _chat, reward, terminated, truncated, info = env.step(call)
        assert (reward, terminated, truncated, info["termination"]) == (0.0, False, True, "max_steps")
        with SessionClient(live_server.url, token) as client:
            assert client.get(env.session)["termination"] != "running"


# ---------------------------------------------------------------------------------------------
# Sessions, limits and errors


def test_reset_and_close_finish_the_open_session(live_server, token, tasks, settings):
    settings.SCALEENV_SESSION_MAX_OPEN = 1
    client = SessionClient(live_server.url, token)
    env = ScaleEnvEnv(live_server.url, token, task=tasks[0].pk)
    _chat, first = env.reset()
    _chat, second = env.reset()  # the first is finished before the second starts: one open at a time
    assert client.get(first["session"])["termination"] == "agent_stop"
    assert client.get(second["session"])["termination"] == "running"
    env.close()
    env.close()  # closing twice is fine
    assert client.get(second["session"])["termination"] == "agent_stop"
    client.close()


def test_too_many_open_sessions_is_an_error_not_a_retry_loop(live_server, token, tasks, settings):
    settings.SCALEENV_SESSION_MAX_OPEN = 1
    slept = []
    client = SessionClient(live_server.url, token, sleep=slept.append)
    opened = client.start(tasks[0].pk)["session"]
    with pytest.raises(SessionAPIError) as refused:
        ScaleEnvEnv(client=client, task=tasks[0].pk).reset()
    assert refused.value.status == 429 and "1 open sessions" in refused.value.detail
    assert refused.value.retry_after is None and slept == []  # no Retry-After: waiting would not help
    client.finish(opened)
    with ScaleEnvEnv(client=client, task=tasks[0].pk) as env:
        env.reset()
    client.close()


def test_throttled_requests_wait_for_retry_after_then_go_through(live_server, token, tasks, monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    from scaleenv_site import throttles

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES",
                        {**ScopedRateThrottle.THROTTLE_RATES, "session-start": "1/second"})
    # The throttles' clock (the live server runs in this process) starts at a window's start and moves
    # only when the client sleeps: which window a request falls in cannot depend on the machine's speed.
    clock = [600.0]
    monkeypatch.setattr(throttles._WindowCounter, "timer", staticmethod(lambda: clock[0]))
    throttles.forget_counts()
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds

    client = SessionClient(live_server.url, token, sleep=sleep)
    first = client.start(tasks[0].pk)["session"]
    second = client.start(tasks[0].pk)["session"]  # throttled (429, Retry-After: 1), waited for, retried
    assert second != first and slept == [1.0]
    impatient = SessionClient(live_server.url, token, retries=0)
    with pytest.raises(SessionAPIError) as throttled:
        impatient.start(tasks[0].pk)
    assert throttled.value.status == 429 and throttled.value.retry_after == 1.0
    assert "throttled" in str(throttled.value).lower()
    for session in (first, second):
        client.finish(session)
    client.close()
    impatient.close()


def test_server_refusals_are_clear_errors(live_server, token, tasks):
    with ScaleEnvEnv(live_server.url, token) as env:
        with pytest.raises(SessionAPIError) as unknown:
            env.reset(options={"task": 999_999})
        assert unknown.value.status == 404 and "no task 999999" in unknown.value.detail
        with pytest.raises(ValueError, match="which task"):
            env.reset()
        with pytest.raises(ValueError, match="unknown reset options"):
            env.reset(options={"task_id": tasks[0].pk})
    with ScaleEnvEnv(live_server.url, "0" * 40, task=tasks[0].pk) as env, pytest.raises(SessionAPIError) as bad:
        env.reset()
    assert bad.value.status == 401
    from rest_framework.authtoken.models import Token

    viewer = Token.objects.get_or_create(user=account("Viewer", "viewer"))[0].key
    with ScaleEnvEnv(live_server.url, viewer, task=tasks[0].pk) as env, pytest.raises(SessionAPIError) as forbidden:
        env.reset()
    assert forbidden.value.status == 403
    with SessionClient("http://127.0.0.1:9", token, timeout=2) as nowhere, pytest.raises(SessionAPIError) as down:
        nowhere.start(tasks[0].pk)
    assert down.value.status is None and "ConnectError" in str(down.value)


# ---------------------------------------------------------------------------------------------
# Gymnasium's API


def test_gymnasiums_env_checker_passes(live_server, token, tasks):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ScaleEnvEnv(live_server.url, token, task=[t.pk for t in tasks]) as env:
            check_env(env, skip_render_check=True)
        made = gymnasium.make("tasks.client:ScaleEnv-v0", base_url=live_server.url, token=token, task=tasks[0].pk)
        try:
            check_env(made.unwrapped)
            made.reset(seed=1)
            _chat, reward, terminated, _truncated, _info = made.step({"message": STOP})
            assert terminated and reward == 0.0
        finally:
            made.close()
    complaints = [str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning)]
    assert complaints == [], complaints  # the checker warns (rather than fails) about most things


def test_reset_picks_among_several_tasks_with_the_seed(live_server, token, tasks):
    ids = [t.pk for t in tasks]
    with ScaleEnvEnv(live_server.url, token, task=ids) as env:
        picked = [env.reset(seed=s)[1]["task"] for s in range(8)]
        again = [env.reset(seed=s)[1]["task"] for s in range(8)]
    assert picked == again and set(picked) <= set(ids) and len(set(picked)) > 1


def test_the_client_imports_without_django():
    code = ("import sys; import tasks.client; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework', 'celery')); "
            "print(bad); sys.exit(1 if bad else 0)")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert done.returncode == 0, done.stdout + done.stderr
