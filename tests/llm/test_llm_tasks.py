"""make_tasks with LLM stages against a real OpenAI-compatible server (tests/llm/fake_openai.py) serving
recorded answers (tests/llm/recordings_tasks/, written by tests/llm/make_task_recordings.py)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from environments.models import LLMCall
from tasks.instantiation.plan import render_instructions
from tasks.models import Task
from tests.llm.fake_openai import FakeOpenAI
from tests.llm.make_task_recordings import FULL_SEED, MODELS

pytestmark = pytest.mark.django_db(transaction=True)
RECORDINGS = Path(__file__).resolve().parent / "recordings_tasks"


def recording(name: str) -> dict:
    return json.loads((RECORDINGS / name).read_text())


def use_llm(settings, fake: FakeOpenAI) -> None:
    settings.SCALEENV_LLM = {"base_url": fake.base_url, "api_key": "test", "model": "fake-default",
                             "role_models": dict(MODELS), "timeout": 2.0, "max_retries": 1, "max_backoff": 0.01,
                             "validation_retries": 1, "concurrency": 2, "slots_dir": "",
                             "prices": {MODELS["scenario_writer"]: [1.0, 4.0]}}


def make_tasks(*args: str) -> dict:
    out = StringIO()
    call_command("make_tasks", *args, "--json", "--in-process", "--jobs", "1", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_it_writes_the_scenarios_with_the_llm_and_refuses_one_that_leaks(stored_domain, settings):
    data = recording("scenarios.json")
    with FakeOpenAI(data["script"]) as fake:
        use_llm(settings, fake)
        summary = make_tasks("--domains", stored_domain.slug, "--per-domain", "2", "--seed", "7", "--scenarios", "llm")
        requests = fake.count()
    good, leaking = Task.objects.order_by("seed")
    # The good one: the recorded text is the task's scenario, and it passes the leak audit.
    expected = data["expected"]["good"]
    assert good.user_scenario["persona"] == expected["persona"]
    assert good.user_scenario["instructions"]["known_info"] == expected["known_info"]
    assert good.instruction == render_instructions(good.user_scenario)
    assert good.status == Task.Status.VERIFIED and not [f for f in good.audit_flags if f["code"] == "leak"]
    assert good.evaluation["llm"]["stages"]["scenario"]["accepted"] is True
    # The leaking one: asked to correct once, still leaking, so the planner's scenario stays, with the reason.
    assert data["expected"]["leaking_customer"] not in leaking.instruction
    flags = {f["code"]: f for f in leaking.audit_flags}
    assert "llm_scenario_rejected" in flags and not flags["llm_scenario_rejected"]["blocking"]
    assert f"says the internal id {data['expected']['leaking_customer']}" in flags["llm_scenario_rejected"]["reason"]
    assert leaking.evaluation["llm"]["stages"]["scenario"] == {
        "accepted": False, "reason": leaking.evaluation["llm"]["stages"]["scenario"]["reason"], "attempts": 2,
        "prompt": leaking.evaluation["llm"]["stages"]["scenario"]["prompt"]}
    # Three requests (one good, two for the leaking one), each stored with the batch; tokens per task reported.
    assert requests == 3 == LLMCall.objects.filter(batch_id=summary["batch"], cached=False).count()
    assert summary["llm_stages"] == ["scenario"] and summary["paper_tokens_per_task"] == 93_200
    assert summary["tokens_per_task"] > 0 and summary["cost"] > 0
    assert summary["llm_rejected"] == {"llm_scenario_rejected": 1}


def test_the_llm_backend_writes_chain_near_misses_scenario_and_gate(stored_domain, settings):
    data = recording("full.json")
    with FakeOpenAI(data["script"]) as fake:
        use_llm(settings, fake)
        summary = make_tasks("--domains", stored_domain.slug, "--per-domain", "1", "--seed", str(FULL_SEED), "--backend", "llm")
        assert {m: fake.count(m) >= 1 for m in ("fake-chain_writer", "fake-state_builder", "fake-scenario_writer",
                                                "fake-gate")} == dict.fromkeys(
            ("fake-chain_writer", "fake-state_builder", "fake-scenario_writer", "fake-gate"), True)
    task = Task.objects.get()
    assert task.status == Task.Status.VERIFIED, task.audit_flags
    notes = task.evaluation["llm"]["stages"]
    assert notes["chain"] == {"accepted": True, "steps": len(data["expected"]["chain"])}
    assert task.gold_chain == data["expected"]["chain"]
    assert notes["scenario"]["accepted"] and task.user_scenario["persona"] == data["expected"]["scenario"]["persona"]
    # The recorded near miss (the target's record with another detail) is kept: C1 still makes the same change.
    assert notes["state"]["kept"] == 1 and notes["state"]["refused"] == []
    assert [d["why"] for d in task.distractors if d["why"].startswith("near miss (llm)")]
    assert not [f for f in task.audit_flags if f["code"] == "ambiguous"]
    gated = [g for g in task.gate if "p_llm" in g]
    assert gated and all(g["p"] == round((g["p_formula"] + 0.8) / 2, 4) for g in gated)
    assert summary["tasks_verified"] == 1 and summary["llm_stages"] == ["chain", "state", "scenario", "gate"]


def test_a_chain_that_does_not_run_falls_back_with_its_reason(stored_domain, settings):
    data = recording("full.json")
    script = dict(data["script"])
    broken = [dict(s) for s in data["expected"]["chain"]]
    last = len(broken) - 1
    broken[last] = {"tool": broken[last]["tool"], "args": {}}  # its required arguments missing
    script["fake-chain_writer"] = [{"answers": [{"json": {"steps": broken}}]}]
    with FakeOpenAI(script) as fake:
        use_llm(settings, fake)
        make_tasks("--domains", stored_domain.slug, "--per-domain", "1", "--seed", str(FULL_SEED), "--backend", "llm")
    task = Task.objects.get()
    note = task.evaluation["llm"]["stages"]["chain"]
    assert note["accepted"] is False and f"step {last}" in note["reason"] and "does not run on s0" in note["reason"]
    assert task.gold_chain == data["expected"]["chain"]  # the planner's chain, checked by execution, stays
    assert any(f["code"] == "llm_chain_rejected" for f in task.audit_flags)


def test_llm_stages_without_an_endpoint_are_a_clear_error(stored_domain, settings):
    settings.SCALEENV_LLM = {"base_url": "", "model": ""}
    with pytest.raises(CommandError, match="SCALEENV_LLM_BASE_URL"):
        call_command("make_tasks", "--domains", stored_domain.slug, "--scenarios", "llm", stdout=StringIO(),
                     stderr=StringIO())
