"""python manage.py synthesize: summary, JSON line, idempotent re-runs, in-process fallback."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from environments.models import Batch, BatchItem, Dependency, Domain, Table, Tool, ToolTest

pytestmark = pytest.mark.django_db(transaction=True)


def synthesize(*args: str) -> tuple[str, dict]:
    out = StringIO()
    call_command("synthesize", *args, stdout=out, stderr=StringIO())
    text = out.getvalue()
    return text, json.loads(text.strip().splitlines()[-1]) if "--json" in args else {}


def test_it_synthesizes_domains_and_ends_with_a_json_summary():
    text, summary = synthesize("--backend", "procedural", "--domains", "2", "--seed", "4", "--worker-wait", "0.5", "--json")
    assert "No Celery worker claimed a job" in text  # no worker in tests: the command does the work itself
    for key in ("domains", "tools_total", "tools_verified", "tests_total", "tests_passed", "edges_total",
                "edges_witnessed", "seconds"):
        assert key in summary
    assert summary["domains"] == 2 == Domain.objects.count()
    assert summary["tools_total"] == Tool.objects.count() >= 50
    assert summary["tests_total"] == ToolTest.objects.count()
    assert summary["edges_total"] == Dependency.objects.count()
    assert summary["tools_verified"] == Tool.objects.filter(status="verified").count()
    assert not ToolTest.objects.filter(outcome="").exists()
    batch = Batch.objects.get()
    assert (batch.kind, batch.status, batch.done_items, batch.total_items) == ("synthesis", "done", 2, 2)
    assert batch.started_at and batch.finished_at
    assert sorted(batch.items.values_list("result_id", flat=True)) == sorted(Domain.objects.values_list("pk", flat=True))


def test_re_running_the_same_command_changes_nothing():
    synthesize("--domains", "1", "--seed", "5", "--in-process", "--json")
    counts = [m.objects.count() for m in (Domain, Table, Tool, ToolTest, Dependency, Batch, BatchItem)]
    text, summary = synthesize("--domains", "1", "--seed", "5", "--in-process", "--json")
    assert "Resuming synthesis batch" in text
    assert [m.objects.count() for m in (Domain, Table, Tool, ToolTest, Dependency, Batch, BatchItem)] == counts
    assert summary["domains"] == 1


def test_re_running_a_job_for_a_done_item_does_nothing():
    from environments import batches

    synthesize("--domains", "1", "--seed", "6", "--in-process")
    item = BatchItem.objects.get()
    assert batches.run_item(item.pk, worker="test") == "skipped"
    assert Domain.objects.count() == 1


def test_the_same_seed_gives_the_same_domain():
    synthesize("--domains", "1", "--seed", "8", "--in-process")
    first = Domain.objects.get()
    snapshot = (first.name, first.spec_hash, sorted(first.tools.values_list("name", "code")))
    Domain.objects.all().delete()
    Batch.objects.all().delete()
    synthesize("--domains", "1", "--seed", "8", "--in-process")
    again = Domain.objects.get()
    assert (again.name, again.spec_hash, sorted(again.tools.values_list("name", "code"))) == snapshot


def test_bad_arguments_are_clear_errors():
    with pytest.raises(CommandError, match="--domains must be at least 1"):
        call_command("synthesize", "--domains", "0", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="llm backend needs an endpoint"):
        call_command("synthesize", "--backend", "llm", stdout=StringIO(), stderr=StringIO())
