"""The llm backend end to end against one real OpenAI-compatible server (tests/llm/fake_openai.py):
``synthesize --backend llm`` (tests/llm/recordings/pet_care_clinic.py: a repaired tool, passing tests, a
witnessed graph) → ``make_tasks --scenarios llm`` (a verified task whose τ²-shaped scenario is the
recorded one) → ``rollout --agent llm --user llm`` (reward 1.0, the user stops, the replay reproduces
the final hash); then the same commands again, served from the cache with no request at all.

The task-side answers are tests/llm/recordings_e2e/pet_care_clinic.json, written by
tests/llm/make_e2e_recordings.py (rerun it after a change to the planner or the pet-care recordings).
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from environments.models import Batch, Dependency, Domain, LLMCall, Tool, ToolTest
from tasks import services
from tasks.instantiation.plan import render_instructions
from tasks.models import Run, Task
from tests.llm.fake_openai import FakeOpenAI
from tests.llm.make_e2e_recordings import DOMAIN_NAME, PREFIX
from tests.llm.recordings import pet_care_clinic as rec

pytestmark = pytest.mark.django_db(transaction=True)
DATA = json.loads((Path(__file__).resolve().parent / "recordings_e2e" / "pet_care_clinic.json").read_text())
MODELS: dict[str, str] = DATA["models"]
TAU2_INSTRUCTION_FIELDS = {"domain", "reason_for_call", "known_info", "unknown_info", "task_instructions"}


def use_llm(settings, fake: FakeOpenAI) -> None:  # noqa: ANN001 - pytest-django's settings
    settings.SCALEENV_LLM = {"base_url": fake.base_url, "api_key": "test", "model": f"{PREFIX}default",
                             "role_models": dict(MODELS), "timeout": 5.0, "max_retries": 1, "max_backoff": 0.01,
                             "validation_retries": 1, "concurrency": 2, "slots_dir": "",
                             "prices": {m: [1.0, 4.0] for m in MODELS.values()}}


def command(name: str, *args: str) -> dict[str, Any]:
    out = StringIO()
    call_command(name, *args, "--json", "--in-process", "--jobs", "1", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue().strip().splitlines()[-1])


def pipeline() -> dict[str, dict[str, Any]]:
    """The three commands a user runs, in order."""
    synthesized = command("synthesize", "--backend", "llm", "--domain", DOMAIN_NAME,
                          "--seed", str(DATA["synthesis_seed"]))
    slug = Domain.objects.get().slug
    made = command("make_tasks", "--domains", slug, "--per-domain", "1", "--seed", str(DATA["make_tasks_seed"]),
                   "--scenarios", "llm")
    rolled = command("rollout", "--agent", "llm", "--user", "llm", "--tasks", "verified")
    return {"synthesize": synthesized, "make_tasks": made, "rollout": rolled}


def test_an_llm_domain_yields_a_task_an_llm_agent_solves_with_the_llm_user_and_a_rerun_costs_nothing(settings):
    expected = DATA["expected"]
    with FakeOpenAI({**rec.script(PREFIX), **DATA["script"]}) as fake:
        use_llm(settings, fake)
        first = pipeline()
        sent = fake.count()

        # Synthesis: verified, with a repaired tool, every test passing and a witnessed graph.
        domain = Domain.objects.get()
        assert (domain.backend, domain.status, domain.slug) == ("llm", "verified", "pet-care-clinic")
        assert first["synthesize"]["tools_verified"] == first["synthesize"]["tools_total"] == 12
        assert first["synthesize"]["tests_passed"] == first["synthesize"]["tests_total"] == ToolTest.objects.count()
        assert Tool.objects.get(name="cancel_appointment").repair_count == 1
        assert Dependency.objects.filter(src__name="list_owner_pets", dst__name="book_care_slot", witnessed=True)
        assert Dependency.objects.filter(witnessed=True).count() >= 20

        # Tasks: one verified task, its scenario the recorded one, τ²-shaped, with no leak.
        assert first["make_tasks"]["tasks_verified"] == 1 and first["make_tasks"]["llm_stages"] == ["scenario"]
        task = Task.objects.get()
        assert task.status == Task.Status.VERIFIED, task.audit_flags
        assert (task.kind, task.intent) == (Task.Kind.WRITE, expected["intent"])
        scenario = task.user_scenario
        assert set(scenario) == {"persona", "instructions"} and set(scenario["instructions"]) == TAU2_INSTRUCTION_FIELDS
        assert all(isinstance(v, str) and v for v in [scenario["persona"], *scenario["instructions"].values()])
        assert scenario == expected["scenario"] and scenario["instructions"]["domain"] == DOMAIN_NAME
        assert task.instruction == render_instructions(scenario)
        assert task.evaluation["llm"]["stages"]["scenario"]["accepted"] is True
        assert not [f for f in task.audit_flags if f["code"] in ("leak", "llm_scenario_rejected")]
        assert task.gold_calls == expected["gold_calls"]
        assert not any(str(v) in json.dumps(scenario) for c in task.gold_calls for k, v in c["args"].items()
                       if k.endswith("_id"))  # no internal id reaches the user

        # Rollout: the LLM agent calls the gold chain, the LLM user stops, reward 1.0, the replay agrees.
        assert first["rollout"]["mean_reward"] == 1.0
        run = Run.objects.get()
        assert (run.reward, run.termination, run.agent, run.user) == (1.0, "user_stop", "llm", "llm")
        assert run.agent_model == MODELS["agent"]
        assert run.breakdown["models"] == {"agent": MODELS["agent"], "user": MODELS["user"]}
        assert [{"tool": s.tool, "args": s.arguments} for s in run.step_rows.order_by("index")
                if s.kind == "tool_call"] == task.gold_calls
        replay = services.replay_run(run)
        assert replay["matches"] and replay["final_hash"] == run.final_hash and replay["calls"] == 4
        # The user simulator was given the written scenario; the agent never saw it.
        user_asks = [r for r in fake.requests if r["model"] == MODELS["user"]]
        agent_asks = [r for r in fake.requests if r["model"] == MODELS["agent"]]
        assert task.instruction in user_asks[0]["messages"][0]["content"]
        assert scenario["instructions"]["reason_for_call"] not in json.dumps(agent_asks)

        # Every role was asked, under its own model, and every call is a row.
        assert {m for m in MODELS.values() if fake.count(m)} == set(MODELS.values())
        assert LLMCall.objects.filter(cached=False).count() == sent
        assert first["rollout"]["llm_requests"] == len(user_asks) + len(agent_asks)
        final = (scenario, run.final_hash, [s.content for s in run.step_rows.order_by("index")])

        # The same commands again, from scratch but for the stored answers: not one request.
        Run.objects.all().delete()
        Task.objects.all().delete()
        Domain.objects.all().delete()
        Batch.objects.all().delete()
        again = pipeline()
        assert fake.count() == sent
    assert again["synthesize"]["llm_calls"] == 0 and again["synthesize"]["llm_cached_calls"] > 0
    assert (again["make_tasks"]["llm_requests"], again["make_tasks"]["llm_cached"]) == (0, 1)
    assert (again["rollout"]["llm_requests"], again["rollout"]["mean_reward"]) == (0, 1.0)
    assert again["rollout"]["llm_cached"] == first["rollout"]["llm_requests"]
    assert again["synthesize"]["llm_cost"] == 0
    run = Run.objects.get()
    assert (run.task.user_scenario, run.final_hash, [s.content for s in run.step_rows.order_by("index")]) == final
    assert (run.termination, run.task.status, run.task.domain.status) == ("user_stop", Task.Status.VERIFIED, "verified")
