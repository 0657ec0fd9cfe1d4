"""Faults of a real endpoint and of real model answers, each served by the OpenAI-compatible test
server as its own recorded answer: each ends as a recorded outcome with a clear message on the row
it concerns, and the rest of the batch carries on."""

from __future__ import annotations

import copy
import json
from io import StringIO

import pytest
from django.core.management import call_command

from environments.models import Domain, LLMCall, Tool
from tests.llm.fake_openai import FakeOpenAI
from tests.llm.recordings import pet_care_clinic as rec
from tests.llm.test_llm_synthesis import llm_settings

pytestmark = pytest.mark.django_db(transaction=True)

NEVER_RETURNS = "def close_care_slot(db, ctx, slot_id):\n    while True:\n        pass\n"
DOES_NOT_PARSE = "def get_care_slot(db, ctx, slot_id)\n    return db['care_slots'][slot_id]\n"


def faulty_script() -> dict:
    script = rec.script()

    def first(model: str, tool: str | None, answers: list[dict]) -> None:
        rule = {"when": [f"Tool: {tool}"]} if tool else {}
        script[f"rec-{model}"].insert(0, {**rule, "answers": answers})

    code = lambda name: {"json": {"code": rec.CODE[name].lstrip()}}  # noqa: E731
    only_positive = [c for c in copy.deepcopy(rec.TESTS["get_owner"]) if c["kind"] == "positive"]
    first("code_writer", "get_pet", [{"content": "Sure! Here is the code: def get_pet(db, ctx, pet_id): ..."},
                                     code("get_pet")])  # invalid JSON, then corrected
    first("test_writer", "get_owner", [{"json": {"cases": only_positive}},
                                       {"json": {"cases": rec.TESTS["get_owner"]}}])  # breaks the schema, then fixed
    first("code_writer", "get_care_slot", [{"json": {"code": DOES_NOT_PARSE}}])
    first("debugger", "get_care_slot", [{"json": {"action": "fix_code", "code": rec.CODE["get_care_slot"].lstrip(),
                                                  "diagnosis": "the def line lacks its colon"}}])
    first("code_writer", "close_care_slot", [{"json": {"code": NEVER_RETURNS}}])
    first("debugger", "close_care_slot", [{"json": {"action": "give_up",
                                                    "diagnosis": "the loop has no exit; the specification is unclear"}}])
    first("code_writer", "search_care_slots", [{"truncated": True, "content": '{"code": "def search_care_slots(db'}])
    first("test_writer", "list_pet_appointments", [{"delay": 1.6, "json": {"cases": rec.TESTS["list_pet_appointments"]}}])
    first("policy_writer", None, [{"status": 429, "retry_after": 0.05}, {"json": {"policy": rec.POLICY}}])
    first("dependency_judge", None, [{"status": 500}])
    return script


def test_each_fault_is_recorded_on_its_row_and_the_batch_carries_on(settings):  # noqa: ANN001
    settings.SCALEENV_SANDBOX_CALL_TIMEOUT = 1.0
    with FakeOpenAI(faulty_script()) as fake:
        llm_settings(settings, fake)
        settings.SCALEENV_LLM = {**settings.SCALEENV_LLM, "timeout": 1.0}
        out = StringIO()
        call_command("synthesize", "--backend", "llm", "--domain", "Pet Care Clinic", "--in-process", "--jobs", "1",
                     "--json", stdout=out, stderr=StringIO())
        summary = json.loads(out.getvalue().strip().splitlines()[-1])
        sent = fake.count()

        domain = Domain.objects.get()
        tools = {t.name: t for t in Tool.objects.all()}
        assert domain.status == "partial" and summary["tools_total"] == 12
        # Recovered: invalid JSON and a schema violation were sent back with the problem and corrected.
        code_calls = LLMCall.objects.filter(role="code_writer", context__tool="get_pet").order_by("pk")
        assert code_calls.count() == 2 and "Invalid JSON" in code_calls[1].request["messages"][-1]["content"]
        assert tools["get_pet"].status == "verified"
        test_calls = LLMCall.objects.filter(role="test_writer", context__tool="get_owner").order_by("pk")
        assert "should have at least 2 items" in test_calls[1].request["messages"][-1]["content"]
        assert tools["get_owner"].status == "verified"
        # Code that does not parse: the check says so, the debugger fixes it.
        assert tools["get_care_slot"].status == "verified" and tools["get_care_slot"].repair_count == 1
        # A tool that never returns: the sandbox stops it; the debugger gives up; the tool fails with both reasons.
        closing = tools["close_care_slot"]
        assert closing.status == "failed"
        assert "debugger gave up" in closing.failure_reason and "Timeout" in closing.failure_reason
        # A truncated answer and an answer slower than the timeout each cost one tool, with the reason.
        assert tools["search_care_slots"].status == "failed"
        assert "cut at the token limit" in tools["search_care_slots"].failure_reason
        assert tools["list_pet_appointments"].status == "failed"
        assert "no answer within 1 s" in tools["list_pet_appointments"].failure_reason
        assert LLMCall.objects.filter(role="test_writer", outcome="timeout").count() == 1
        assert LLMCall.objects.filter(role="code_writer", outcome="truncated").count() == 1
        # 429 with Retry-After: waited, retried, succeeded (one row, two attempts).
        policy = LLMCall.objects.get(role="policy_writer")
        assert (policy.outcome, policy.attempts) == ("ok", 2) and domain.policy.startswith("# Pet Care Clinic")
        # A 500 from the dependency judge: recorded, and the rule-based, witnessed edges stand.
        assert LLMCall.objects.get(role="dependency_judge").outcome == "server_error"
        judge = next(s for s in domain.stages if s["stage"] == "judge")
        assert "judge failed" in judge["summary"] and "500" in judge["summary"]
        assert domain.dependencies.filter(witnessed=True).exists()
        # The rest carried on.
        assert sum(1 for t in tools.values() if t.status == "verified") == 9
        assert summary["llm_failed_calls"] == 3 and summary["tools_verified"] == 9

        # A second run of the same work is served from the cache: no request reaches the server
        # (answers that failed are not cached, so only the failed calls are asked again).
        Domain.objects.all().delete()
        from environments.models import Batch

        Batch.objects.all().delete()
        call_command("synthesize", "--backend", "llm", "--domain", "Pet Care Clinic", "--in-process", "--jobs", "1",
                     stdout=StringIO(), stderr=StringIO())
        again = LLMCall.objects.filter(cached=False, batch__isnull=False)
        assert sorted(again.values_list("outcome", flat=True)) == ["server_error", "timeout", "truncated"]
        assert fake.count() - sent == sum(again.values_list("attempts", flat=True))  # their retries included
        assert LLMCall.objects.filter(cached=True, batch__isnull=False).count() >= 30
