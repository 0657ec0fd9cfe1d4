"""rollout --agent llm --user llm against a real OpenAI-compatible server (tests/llm/fake_openai.py) serving
a recorded conversation (tests/llm/recordings_tasks/rollout.json): reward 1.0 through the episode loop,
errors ending the run with a recorded outcome, a second rollout served from the cache."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from environments.models import LLMCall
from tasks import services
from tasks.models import Run, Task
from tests.llm.fake_openai import FakeOpenAI
from tests.llm.make_task_recordings import MODELS, ROLLOUT_SEED
from tests.llm.test_llm_tasks import use_llm

pytestmark = pytest.mark.django_db(transaction=True)
SCRIPT = json.loads((Path(__file__).resolve().parent / "recordings_tasks" / "rollout.json").read_text())["script"]


def command(name: str, *args: str) -> dict:
    out = StringIO()
    call_command(name, *args, "--json", "--in-process", "--jobs", "1", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.fixture
def task(stored_domain) -> Task:
    command("make_tasks", "--domains", stored_domain.slug, "--per-domain", "1", "--seed", str(ROLLOUT_SEED))
    task = Task.objects.get()
    assert task.status == Task.Status.VERIFIED and task.kind == Task.Kind.WRITE
    return task


def test_an_llm_agent_with_the_llm_user_earns_the_reward_and_a_rerun_comes_from_the_cache(task, settings):
    with FakeOpenAI(SCRIPT) as fake:
        use_llm(settings, fake)
        first = command("rollout", "--agent", "llm", "--user", "llm", "--tasks", "verified")
        asked = fake.count()
        run = Run.objects.get(batch_id=first["batch"])
        assert (first["mean_reward"], run.reward, run.termination) == (1.0, 1.0, "user_stop")
        assert (run.agent, run.user, run.agent_model) == ("llm", "llm", MODELS["agent"])
        assert [s.tool for s in run.step_rows.order_by("index") if s.kind == "tool_call"] == [c["tool"] for c in task.gold_calls]
        assert services.replay_run(run)["matches"]
        # What the agent was sent: the policy framed by the agent prompt and the tools; never the scenario.
        agent_requests = [r for r in fake.requests if r["model"] == MODELS["agent"]]
        sent = json.dumps(agent_requests)
        assert task.domain.policy[:80] in agent_requests[0]["messages"][0]["content"]
        assert {t["function"]["name"] for t in agent_requests[0]["tools"]} >= {c["tool"] for c in task.gold_calls}
        assert task.user_scenario["instructions"]["reason_for_call"] not in sent and "s_gt" not in sent
        # The user simulator reads the scenario; its own turns are the assistant's.
        user_requests = [r for r in fake.requests if r["model"] == MODELS["user"]]
        assert task.instruction in user_requests[0]["messages"][0]["content"]
        assert first["llm_requests"] == asked == len(agent_requests) + len(user_requests)
        # The same episode again, in another batch: every answer from the cache, no request at all.
        second = command("rollout", "--agent", "llm", "--user", "llm", "--tasks", "all")
        assert fake.count() == asked
    assert (second["mean_reward"], second["llm_requests"], second["llm_cached"]) == (1.0, 0, asked)
    assert LLMCall.objects.filter(batch_id=second["batch"], cached=True).count() == asked


def test_an_llm_error_mid_episode_ends_the_run_with_its_outcome_and_the_batch_carries_on(task, settings):
    script = dict(SCRIPT)
    script[MODELS["user"]] = [{"when": ["e-mail address"], "answers": [{"status": 500}]}] + SCRIPT[MODELS["user"]]
    with FakeOpenAI(script) as fake:
        use_llm(settings, fake)
        summary = command("rollout", "--agent", "llm", "--user", "llm", "--trials", "1")
    run = Run.objects.get(batch_id=summary["batch"])
    assert (run.termination, run.reward) == ("user_error", 0.0)
    assert run.breakdown["failure"]["who"] == "user" and run.breakdown["failure"]["outcome"] == "server_error"
    assert "after 2 attempts" in run.breakdown["failure"]["message"]
    assert summary["status"] == "done" and summary["failures"][0]["outcome"] == "server_error"
    assert LLMCall.objects.filter(batch_id=summary["batch"], outcome="server_error").count() == 1


def test_a_truncated_agent_answer_ends_the_run_as_an_agent_error(task, settings):
    script = dict(SCRIPT)
    script[MODELS["agent"]] = [{"answers": [{"truncated": True, "content": "Let me look th"}]}]
    with FakeOpenAI(script) as fake:
        use_llm(settings, fake)
        summary = command("rollout", "--agent", "llm", "--user", "llm")
    run = Run.objects.get(batch_id=summary["batch"])
    assert (run.termination, run.reward, run.breakdown["failure"]["outcome"]) == ("agent_error", 0.0, "truncated")
    assert "agent error" in run.messages[-1]["content"]


def test_the_llm_agent_with_the_scripted_user_and_without_an_endpoint(task, settings):
    settings.SCALEENV_LLM = {"base_url": "", "model": ""}
    with pytest.raises(CommandError, match="needs an LLM endpoint"):
        call_command("rollout", "--agent", "llm", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="needs an LLM endpoint"):
        call_command("rollout", "--agent", "oracle", "--user", "llm", stdout=StringIO(), stderr=StringIO())


def test_a_session_asking_for_the_llm_user_without_an_endpoint_is_a_clear_400(task, settings):
    from tests.conftest import api_client

    settings.SCALEENV_LLM = {"base_url": "", "model": ""}
    client = api_client("Agent", "agent")
    refused = client.post("/api/sessions/", json.dumps({"task": task.pk, "user": "llm"}),
                          content_type="application/json")
    assert refused.status_code == 400 and "SCALEENV_LLM_BASE_URL" in refused.json()["detail"]
    assert not Run.objects.filter(agent="external").exists()
    scripted = client.post("/api/sessions/", json.dumps({"task": task.pk, "user": "scripted"}),
                           content_type="application/json")
    assert scripted.status_code == 201


def test_the_llm_user_replays_a_stored_conversation_from_the_cache(task, settings):
    """What an HTTP session needs: the user rebuilt from the stored turns answers the next message
    exactly as in the live episode, without a new request."""
    from environments import services as env_services
    from tasks import selectors
    from tasks.rollout.llm import LLMUser
    from tasks.spec import build_task_spec

    with FakeOpenAI(SCRIPT) as fake:
        use_llm(settings, fake)
        command("rollout", "--agent", "llm", "--user", "llm")
        run = Run.objects.get()
        steps = list(run.step_rows.order_by("index"))
        said = [s.content for s in steps if s.kind == "user"]
        heard = [s.content for s in steps if s.kind == "message"]
        asked = fake.count()
        spec = build_task_spec(selectors.domain_view(task.domain), task)
        user = LLMUser.replay(spec, env_services.llm_client().with_sample(run.trial), said[:-1], heard[:-1])
        assert user.respond(heard[-1]) == said[-1] and fake.count() == asked


def _recorded_agent_moves() -> list[dict]:
    """The recorded agent's answers in the order it gave them (its rules are listed last to first)."""
    return [rule["answers"][0] for rule in reversed(SCRIPT[MODELS["agent"]])]


def test_an_http_session_with_the_llm_user_reaches_the_reward(task, settings):
    from tests.conftest import api_client

    client = api_client("Agent", "agent")

    def post(url: str, body: dict):
        return client.post(url, json.dumps(body), content_type="application/json")

    with FakeOpenAI(SCRIPT) as fake:
        use_llm(settings, fake)
        started = post("/api/sessions/", {"task": task.pk, "user": "llm"})
        assert started.status_code == 201, started.content
        session = started.json()["session"]
        assert started.json()["messages"][1]["content"] == SCRIPT[MODELS["user"]][-1]["answers"][0]["content"]
        reply: dict = {}
        for move in _recorded_agent_moves():  # an outside agent making the recorded model's moves
            for call in move.get("tool_calls", []):
                result = post(f"/api/sessions/{session}/tool-calls/",
                              {"name": call["name"], "arguments": json.dumps(call["arguments"])}).json()
                assert result["outcome"] == "success", result
            if move.get("content"):
                reply = post(f"/api/sessions/{session}/messages/", {"content": move["content"]}).json()
        assert (reply["finished"], reply["reward"], reply["user"]) == (True, 1.0, "That's great, thank you. ###STOP###")
        assert fake.count(MODELS["user"]) == 4  # the opening and one reply per agent message
    run = Run.objects.get(pk=session)
    assert (run.user, run.termination, run.reward) == ("llm", "user_stop", 1.0)


def test_an_http_session_whose_llm_user_fails_ends_as_user_error(task, settings):
    from tests.conftest import api_client

    client = api_client("Agent", "agent")
    ask = _recorded_agent_moves()[0]["content"]
    with FakeOpenAI({MODELS["user"]: [{"answers": [{"status": 500}]}]}) as fake:  # no opening at all
        use_llm(settings, fake)
        refused = client.post("/api/sessions/", json.dumps({"task": task.pk, "user": "llm"}),
                              content_type="application/json")
    assert refused.status_code == 502 and "server_error" in refused.json()["detail"]
    assert not Run.objects.filter(agent="external").exists()
    script = dict(SCRIPT)
    script[MODELS["user"]] = [{"when": [ask], "answers": [{"status": 500}]}] + SCRIPT[MODELS["user"]]
    with FakeOpenAI(script) as fake:
        use_llm(settings, fake)
        started = client.post("/api/sessions/", json.dumps({"task": task.pk, "user": "llm"}),
                              content_type="application/json")
        session = started.json()["session"]
        reply = client.post(f"/api/sessions/{session}/messages/", json.dumps({"content": ask}),
                            content_type="application/json")
    assert reply.status_code == 200 and reply.json()["finished"] is True
    assert "server_error" in reply.json()["error"]
    run = Run.objects.get(pk=session)
    assert run.termination == "user_error" and run.breakdown["failure"]["who"] == "user"


def test_each_trial_is_its_own_sample_not_the_first_answer_again(task, settings):
    with FakeOpenAI(SCRIPT) as fake:
        use_llm(settings, fake)
        summary = command("rollout", "--agent", "llm", "--user", "llm", "--trials", "2")
        seeds = sorted({r.get("seed") for r in fake.requests})
        per_trial = fake.count() // 2
    assert seeds == [0, 1] and summary["llm_requests"] == fake.count() == 2 * per_trial  # nothing from the cache
    assert sorted(Run.objects.filter(batch_id=summary["batch"]).values_list("reward", flat=True)) == [1.0, 1.0]


def test_batches_that_wait_on_a_model_run_on_the_llm_queue(task, settings):
    from scaleenv_site.celery import app

    from environments import batches

    with FakeOpenAI(SCRIPT) as fake:
        use_llm(settings, fake)
        llm_batch, _ = services.start_rollout_batch(agent="oracle", which="verified", trials=1, user="llm")
        plain_batch, _ = services.start_rollout_batch(agent="oracle", which="verified", trials=1)
    kind = batches.get_kind("rollout")
    assert (kind.job_for(llm_batch), kind.job_for(plain_batch)) == ("scaleenv.llm_rollout", "scaleenv.rollout")
    assert app.amqp.router.route({}, "scaleenv.llm_rollout")["queue"].name == "llm"
    assert app.amqp.router.route({}, "scaleenv.rollout")["queue"].name == "exec"
    assert batches.get_kind("tasks").job_for(type(llm_batch)(backend="llm")) == "scaleenv.llm_make_task"
