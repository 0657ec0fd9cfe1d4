"""The llm synthesis backend end to end against a real OpenAI-compatible server serving recorded
answers (tests/llm/recordings/pet_care_clinic.py): synthesize → test → repair → TDG → tasks, with
every call stored, priced and cached."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from environments.models import Batch, Dependency, Domain, LLMCall, Tool, ToolTest
from tests.llm.fake_openai import FakeOpenAI
from tests.llm.recordings import pet_care_clinic as rec

pytestmark = pytest.mark.django_db(transaction=True)


def llm_settings(settings, fake: FakeOpenAI) -> None:  # noqa: ANN001 - pytest-django's settings
    models = rec.role_models()
    settings.SCALEENV_LLM = {**settings.SCALEENV_LLM, "base_url": fake.base_url, "api_key": "test",
                             "model": "rec-default", "role_models": models, "timeout": 2.0, "max_retries": 1,
                             "max_backoff": 0.1, "validation_retries": 2, "slots_dir": "",
                             "prices": {m: [1.0, 4.0] for m in models.values()}}


def synthesize(*args: str) -> tuple[str, dict]:
    out = StringIO()
    call_command("synthesize", "--backend", "llm", *args, "--in-process", "--jobs", "1", "--json", stdout=out,
                 stderr=StringIO())
    text = out.getvalue()
    return text, json.loads(text.strip().splitlines()[-1])


@pytest.fixture
def fake(settings):  # noqa: ANN001, ANN201
    with FakeOpenAI(rec.script()) as server:
        llm_settings(settings, server)
        yield server


def test_it_synthesizes_a_verified_domain_from_a_name(fake: FakeOpenAI):
    text, summary = synthesize("--domain", "Pet Care Clinic")
    domain = Domain.objects.get()
    assert (domain.backend, domain.status, domain.slug, domain.sector) == ("llm", "verified", "pet-care-clinic", "pet_care")
    assert domain.policy.startswith("# Pet Care Clinic agent policy")
    assert summary["tools_verified"] == summary["tools_total"] == 12 == Tool.objects.filter(status="verified").count()
    assert summary["tests_passed"] == summary["tests_total"] == ToolTest.objects.count() >= 24
    # The debugger fixed the code of one tool and the expectation of another's test.
    cancel = Tool.objects.get(name="cancel_appointment")
    assert cancel.repair_count == 1 and "places_left" in cancel.code
    fixed = ToolTest.objects.get(tool__name="update_owner_contact", name="positive: changes the phone")
    assert fixed.attempts == 2 and fixed.outcome == "success" and "expected a phone number" in fixed.expected["repaired"]
    # The TDG: rule-based candidates, judged (one rejected), witnessed by execution.
    assert not Dependency.objects.filter(src__name="close_care_slot", dst__name="cancel_appointment").exists()
    assert Dependency.objects.filter(src__name="book_care_slot", dst__name="cancel_appointment").exists()
    assert Dependency.objects.filter(witnessed=True).count() >= 20
    assert any(s["stage"] == "judge" and "1 rejected" in s["summary"] for s in domain.stages)
    # Tables keep the designer's roles, life cycles and column policies.
    slots = domain.tables.get(name="care_slots")
    assert slots.role == "resource" and slots.machine["states"] == ["open", "closed"]
    assert {c["name"]: c["policy"] for c in domain.tables.get(name="owners").columns}["full_name"] == "semantic"
    # Every call is a row, priced; the summary reports tokens per domain next to the paper's figure.
    calls = LLMCall.objects.filter(batch=Batch.objects.get())
    assert calls.count() == fake.count() and not calls.exclude(outcome="ok").exists()
    assert set(calls.values_list("role", flat=True)) == set(rec.ROLES)
    assert summary["llm_calls"] == fake.count() and summary["llm_tokens_per_domain"] == 1800 * fake.count()
    assert summary["paper_tokens_per_domain"] == 546_000 and summary["llm_cost"] > 0
    assert "tokens per domain (paper: ~546,000)" in text


def test_a_second_run_is_served_from_the_cache(fake: FakeOpenAI):
    synthesize("--domain", "Pet Care Clinic")
    sent = fake.count()
    Domain.objects.all().delete()
    Batch.objects.all().delete()  # a fresh batch: the same requests again
    _text, summary = synthesize("--domain", "Pet Care Clinic")
    assert fake.count() == sent  # not one request reached the server
    assert Domain.objects.get().status == "verified"
    assert summary["llm_calls"] == 0 and summary["llm_cached_calls"] == sent and summary["llm_cost"] == 0


def test_it_proposes_new_domains_avoiding_existing_names(fake: FakeOpenAI):
    text, summary = synthesize("--domains", "1")
    assert Domain.objects.get().name == "Pet Care Clinic"
    proposer = LLMCall.objects.get(role="domain_proposer")
    assert proposer.batch_id == Batch.objects.get().pk and "Mode: list" in proposer.request["messages"][1]["content"]


def test_make_tasks_yields_verified_tasks_on_the_llm_domain(fake: FakeOpenAI):
    from tasks.models import Task

    synthesize("--domain", "Pet Care Clinic")
    out = StringIO()
    call_command("make_tasks", "--domains", "pet-care-clinic", "--per-domain", "4", "--in-process", "--jobs", "1",
                 "--json", stdout=out, stderr=StringIO())
    tasks = Task.objects.filter(domain__slug="pet-care-clinic")
    assert tasks.count() >= 2, out.getvalue()[-2000:]
    assert all(t.gold_chain for t in tasks)


def test_llm_batches_route_to_the_llm_queue(fake: FakeOpenAI):
    from scaleenv_site.celery import app

    from environments import jobs, services

    batch, _ = services.start_synthesis_batch(backend="llm", domains=1, seed=1, domain_name="Pet Care Clinic")
    name = services.synthesis_job_name(batch)
    assert name == "scaleenv.llm_synthesize_domain" and jobs.llm_synthesize_domain.name == name and name in app.tasks
    assert app.amqp.router.route({}, name)["queue"].name == "llm"


def test_enqueueing_an_llm_batch_sends_the_llm_job(fake: FakeOpenAI, monkeypatch, settings,  # noqa: ANN001
                                                   django_capture_on_commit_callbacks):
    from celery import current_app

    from environments import batches, services

    settings.CELERY_TASK_ALWAYS_EAGER = False
    sent: list[str] = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args: sent.append(name))  # the broker is not the point
    batch, _ = services.start_synthesis_batch(backend="llm", domains=1, seed=1, domain_name="Pet Care Clinic")
    with django_capture_on_commit_callbacks(execute=True):
        batches.enqueue(batch)
    assert sent == ["scaleenv.llm_synthesize_domain"]


def test_bad_arguments_are_clear_errors(settings):  # noqa: ANN001
    from django.core.management import CommandError

    settings.SCALEENV_LLM = {**settings.SCALEENV_LLM, "base_url": "", "model": ""}
    with pytest.raises(CommandError, match="llm backend needs an endpoint"):
        call_command("synthesize", "--backend", "llm", "--domain", "pet care", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="--domain needs --backend llm"):
        call_command("synthesize", "--backend", "procedural", "--domain", "pet care", stdout=StringIO(),
                     stderr=StringIO())
