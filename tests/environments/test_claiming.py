"""The batch lifecycle: jobs claim their item with a conditional update; stale, poisoned, failed
and already-made items; kinds are registered by their apps."""

from datetime import timedelta

import pytest
from django.utils import timezone

from environments import batches, services
from environments.models import Batch, BatchItem

pytestmark = pytest.mark.django_db


def make_item():
    batch, _ = services.start_synthesis_batch(backend="procedural", domains=2, seed=9)
    return batch, batch.items.order_by("seed").first()


def test_only_one_claim_wins():
    _batch, item = make_item()
    assert batches.claim_item(item.pk, "w1") is not None
    assert batches.claim_item(item.pk, "w2") is None
    item.refresh_from_db()
    assert (item.status, item.claimed_by, item.attempts) == ("running", "w1", 1)


def test_an_expired_lease_can_be_reclaimed():
    _batch, item = make_item()
    batches.claim_item(item.pk, "w1")
    BatchItem.objects.filter(pk=item.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    claimed = batches.claim_item(item.pk, "w2")
    assert claimed is not None and claimed.attempts == 2


def test_items_of_a_dead_local_worker_are_reopened():
    batch, item = make_item()
    batches.claim_item(item.pk, "placeholder")
    dead = batches.worker_identity().rsplit(":", 1)[0] + ":999999"  # no such pid on this host
    BatchItem.objects.filter(pk=item.pk).update(claimed_by=dead)
    assert batches.reopen_unfinished_items(batch) == 1
    item.refresh_from_db()
    assert item.status == "retry"


def test_an_item_is_poisoned_after_too_many_attempts(settings):
    settings.SCALEENV_JOB_ATTEMPTS = 2
    batch, item = make_item()
    for _ in range(2):
        batches.claim_item(item.pk, "w")
        BatchItem.objects.filter(pk=item.pk).update(status="retry")
    assert batches.claim_item(item.pk, "w") is None
    item.refresh_from_db()
    assert item.status == "poisoned" and "gave up after 2 attempts" in item.error
    batch.refresh_from_db()
    assert batch.failed_items == 1


def test_a_failing_item_is_recorded_and_the_rest_carries_on(monkeypatch):
    batch, item = make_item()
    real = services.synthesize_domain

    def explode_once(seed, *args, **kwargs):
        if seed == item.seed:
            raise RuntimeError("malformed output from a stage")
        return real(seed, *args, **kwargs)

    monkeypatch.setattr(services, "synthesize_domain", explode_once)
    outcomes = [batches.run_item(i.pk, worker="w") for i in batch.items.order_by("seed")]
    assert outcomes == ["failed", "done"]
    item.refresh_from_db()
    assert item.status == "failed" and "malformed output from a stage" in item.error
    batch.refresh_from_db()
    assert (batch.status, batch.done_items, batch.failed_items) == ("partial", 1, 1)


def test_redelivering_a_job_whose_result_already_exists_finishes_the_item_at_once():
    # A second batch asks for the domains the first one already made: its items link, compute nothing.
    first, _ = services.start_synthesis_batch(backend="procedural", domains=1, seed=12)
    assert batches.run_item(first.items.get().pk, worker="w") == "done"
    second, _ = services.start_synthesis_batch(backend="procedural", domains=2, seed=12)
    made = second.items.get(seed=first.items.get().seed)
    assert batches.run_item(made.pk, worker="w") == "linked"
    made.refresh_from_db()
    assert (made.status, made.result_id, made.lease_expires_at) == ("done", first.items.get().result_id, None)
    assert made.counters["tools_total"] > 0
    second.refresh_from_db()
    assert (second.done_items, second.status) == (1, "running")


def test_a_task_item_whose_task_exists_is_finished_not_left_running(stored_domain):
    # The drift the old copies had: the tasks copy linked without finishing the item.
    from tasks import services as task_services
    from tasks.models import Task

    first, _ = task_services.start_task_batch(domains=[stored_domain], per_domain=1, seed=3)
    assert batches.run_item(first.items.get().pk, worker="w") == "done"
    again, _ = task_services.start_task_batch(domains=[stored_domain], per_domain=1, seed=3, complexity="hard")
    item = again.items.get()
    assert batches.run_item(item.pk, worker="w") == "linked"
    item.refresh_from_db()
    assert item.status == "done" and item.result_id == Task.objects.get().pk
    again.refresh_from_db()
    assert (again.status, again.counters["tasks_created"]) == ("done", 1)


def test_each_app_registers_its_own_kinds_and_unknown_kinds_are_refused():
    assert {k.name: k.job_name for k in batches.kinds()} == {
        "rollout": "scaleenv.rollout", "synthesis": "scaleenv.synthesize_domain", "tasks": "scaleenv.make_task",
        "bulk_review": "scaleenv.bulk_review", "export": "scaleenv.export"}
    with pytest.raises(LookupError, match="no batch kind 'no-such-kind'"):
        batches.get_or_create_batch(kind="no-such-kind", backend="-", params={}, items=list)
    assert not Batch.objects.exists()


def test_enqueue_sends_jobs_by_name_after_commit(monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    from celery import current_app

    monkeypatch.setattr(current_app, "send_task", lambda name, args: sent.append((name, args)))
    batch, _ = services.start_synthesis_batch(backend="procedural", domains=2, seed=14)
    with django_capture_on_commit_callbacks(execute=True):
        assert batches.enqueue(batch) == 2
        assert sent == []  # nothing leaves before the transaction commits
    assert sent == [("scaleenv.synthesize_domain", [pk]) for pk in batch.items.order_by("pk").values_list("pk", flat=True)]
