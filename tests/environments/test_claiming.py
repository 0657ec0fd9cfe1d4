"""Jobs claim their row with a conditional update; stale and poisoned items."""

from datetime import timedelta

import pytest
from django.utils import timezone

from environments import services
from environments.models import SynthesisItem

pytestmark = pytest.mark.django_db


def make_item():
    run, _ = services.start_synthesis_run(backend="procedural", domains=2, seed=9)
    return run, run.items.order_by("seed").first()


def test_only_one_claim_wins():
    _run, item = make_item()
    assert services.claim_item(item.pk, "w1") is not None
    assert services.claim_item(item.pk, "w2") is None
    item.refresh_from_db()
    assert (item.status, item.claimed_by, item.attempts) == ("running", "w1", 1)


def test_an_expired_lease_can_be_reclaimed():
    _run, item = make_item()
    services.claim_item(item.pk, "w1")
    SynthesisItem.objects.filter(pk=item.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    claimed = services.claim_item(item.pk, "w2")
    assert claimed is not None and claimed.attempts == 2


def test_items_of_a_dead_local_worker_are_reopened():
    run, item = make_item()
    services.claim_item(item.pk, "placeholder")
    dead = services.worker_identity().rsplit(":", 1)[0] + ":999999"  # no such pid on this host
    SynthesisItem.objects.filter(pk=item.pk).update(claimed_by=dead)
    assert services.reopen_unfinished_items(run) == 1
    item.refresh_from_db()
    assert item.status == "retry"


def test_an_item_is_poisoned_after_too_many_attempts(settings):
    settings.SCALEENV_JOB_ATTEMPTS = 2
    run, item = make_item()
    for _ in range(2):
        services.claim_item(item.pk, "w")
        SynthesisItem.objects.filter(pk=item.pk).update(status="retry")
    assert services.claim_item(item.pk, "w") is None
    item.refresh_from_db()
    assert item.status == "poisoned" and "gave up after 2 attempts" in item.error
    run.refresh_from_db()
    assert run.failed_items == 1


def test_a_failing_item_is_recorded_and_the_rest_carries_on(monkeypatch):
    run, item = make_item()
    import environments.services as svc

    real = svc.synthesize_domain

    def explode_once(seed, *args, **kwargs):
        if seed == item.seed:
            raise RuntimeError("malformed output from a stage")
        return real(seed, *args, **kwargs)

    monkeypatch.setattr(svc, "synthesize_domain", explode_once)
    for i in run.items.all():
        services.run_synthesis_item(i.pk, worker="w")
    item.refresh_from_db()
    assert item.status == "failed" and "malformed output from a stage" in item.error
    run.refresh_from_db()
    assert (run.status, run.done_items, run.failed_items) == ("partial", 1, 1)
