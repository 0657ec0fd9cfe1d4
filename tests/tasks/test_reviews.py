"""Reviewing tasks: leases, verdicts, several reviewers and adjudication, bulk decisions, filters,
agreement, and the refusals (roles, CSRF, reasons)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from environments import batches
from tasks import reviews, selectors, services
from tasks.agreement import cohen_kappa, fleiss_kappa
from tasks.models import RejectionReason, Review, ReviewEvent, ReviewQueue, Task
from tests.conftest import account, page_client
from tests.tasks.conftest import stored_tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tasks():
    return stored_tasks(seed=9, per_domain=6)


def fresh(task: Task) -> Task:
    return Task.objects.get(pk=task.pk)


# ---------------------------------------------------------------------------------------------
# Leases and verdicts


def test_a_lease_keeps_a_task_to_one_reviewer_until_it_runs_out(tasks):
    alice, bob = account("Curator", "alice"), account("Curator", "bob")
    task = tasks[0]
    reviews.claim(task.pk, alice)
    with pytest.raises(reviews.ReviewError, match="alice is reviewing"):
        reviews.claim(task.pk, bob)
    with pytest.raises(reviews.ReviewError, match="do not hold"):
        reviews.submit(task.pk, bob, "approved")
    reviews.claim(task.pk, alice)  # a renewal by the holder
    assert ReviewEvent.objects.filter(task=task, action="claim").count() == 1  # renewals are not events
    Task.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    reviews.claim(task.pk, bob)
    assert fresh(task).lease_holder == bob
    actions = list(ReviewEvent.objects.filter(task=task).values_list("action", "actor__username"))
    assert actions == [("claim", "alice"), ("lease_expired", None), ("claim", "bob")]
    with pytest.raises(reviews.ReviewError):
        reviews.submit(task.pk, alice, "approved")  # alice's lease is gone


def test_expire_leases_puts_run_out_leases_back_to_pending_with_an_event(tasks):
    from io import StringIO

    from django.core.management import call_command

    alice = account("Curator", "alice")
    stale, live = tasks[0], tasks[1]
    reviews.claim(stale.pk, alice)
    reviews.claim(live.pk, alice)
    Task.objects.filter(pk=stale.pk).update(lease_expires_at=timezone.now() - timedelta(minutes=1))
    out = StringIO()
    call_command("expire_leases", stdout=out)
    assert "released 1 expired" in out.getvalue()
    assert fresh(stale).review_status == "pending" and fresh(stale).lease_holder is None
    assert fresh(live).review_status == "in_review"
    assert ReviewEvent.objects.get(task=stale, action="lease_expired").after["expired_holder"] == alice.pk


def test_an_approval_decides_and_records_who_when_and_before_after(tasks):
    alice = account("Curator", "alice")
    task = tasks[0]
    reviews.claim(task.pk, alice)
    decision = reviews.submit(task.pk, alice, "approved")
    assert decision.status == "approved" and fresh(task).review_status == "approved" and fresh(task).reviewed_at
    event = ReviewEvent.objects.get(task=task, action="approve")
    assert (event.actor, event.from_status, event.to_status) == (alice, "in_review", "approved")
    assert event.before["lease_holder"] == alice.pk and event.after["lease_holder"] is None
    with pytest.raises(reviews.ReviewError, match="already approved"):
        reviews.claim(task.pk, account("Curator", "bob"))
    reviews.reopen(task.pk, alice, "second look")
    assert fresh(task).review_status == "pending" and not Review.objects.filter(task=task).exists()


@pytest.mark.parametrize("verdict, reasons, comment, message", [
    ("rejected", [], "", "at least one reason"),
    ("rejected", ["other"], "", "needs a comment"),
    ("rejected", ["no-such-reason"], "", "unknown"),
    ("needs_changes", [], "  ", "say what needs to change"),
    ("approved", ["duplicate"], "", "takes no rejection reasons"),
    ("maybe", [], "", "must be one of"),
])
def test_a_verdict_without_what_it_needs_is_refused_and_changes_nothing(tasks, verdict, reasons, comment, message):
    alice = account("Curator", "alice")
    task = tasks[0]
    reviews.claim(task.pk, alice)
    with pytest.raises(reviews.InvalidVerdict, match=message):
        reviews.submit(task.pk, alice, verdict, reasons, comment)
    assert fresh(task).review_status == "in_review" and not Review.objects.exists()


def test_a_rejection_keeps_its_reasons_and_comment(tasks):
    alice = account("Curator", "alice")
    task = tasks[0]
    reviews.claim(task.pk, alice)
    reviews.submit(task.pk, alice, "rejected", ["leaked-answer", "other"], "the opening gives the booking id")
    review = Review.objects.get(task=task)
    assert sorted(review.reasons.values_list("code", flat=True)) == ["leaked-answer", "other"]
    event = ReviewEvent.objects.get(task=task, action="reject")
    assert sorted(event.reasons) == ["leaked-answer", "other"] and event.comment == "the opening gives the booking id"


def test_several_reviewers_agree_or_go_to_adjudication(tasks):
    ReviewQueue.objects.filter(is_default=True).update(reviews_required=2)
    alice, bob, carol = account("Curator", "alice"), account("Curator", "bob"), account("Curator", "carol")
    agreed, disputed = tasks[0], tasks[1]
    for task in (agreed, disputed):
        reviews.claim(task.pk, alice)
        assert reviews.submit(task.pk, alice, "approved").status == "pending"  # one of two verdicts
    assert selectors.verdicts_for(fresh(agreed), bob)["others"] == []  # hidden until bob gives his
    assert selectors.verdicts_for(fresh(agreed), bob)["hidden"] == 1
    with pytest.raises(reviews.ReviewError, match="already gave"):
        reviews.claim(agreed.pk, alice)
    assert selectors.next_task_for(alice, Task.objects.filter(pk__in=[agreed.pk, disputed.pk])) is None
    reviews.claim(agreed.pk, bob)
    assert reviews.submit(agreed.pk, bob, "approved").status == "approved"
    reviews.claim(disputed.pk, bob)
    decision = reviews.submit(disputed.pk, bob, "rejected", ["duplicate"])
    assert decision.status == "pending" and decision.disagreement
    assert list(selectors.disputed_tasks(Task.objects.all()).values_list("pk", flat=True)) == [disputed.pk]
    assert selectors.disputed_count() == 1
    assert selectors.verdicts_for(fresh(disputed), carol)["disputed"]
    reviews.adjudicate(disputed.pk, carol, "rejected", ["duplicate"], "same as task 1")
    assert fresh(disputed).review_status == "rejected"
    assert not selectors.disputed_tasks(Task.objects.all()).exists()


# ---------------------------------------------------------------------------------------------
# Bulk


def test_a_bulk_decision_gives_every_undecided_task_its_own_event_and_skips_a_held_one(tasks):
    alice, bob = account("Curator", "alice"), account("Curator", "bob")
    held, done = tasks[0], tasks[1]
    reviews.claim(held.pk, bob)
    reviews.claim(done.pk, bob)
    reviews.submit(done.pk, bob, "approved")
    ids = [t.pk for t in tasks]
    counts = reviews.decide_many(ids, alice, "rejected", ["unrealistic-data"], "bulk")
    assert counts == {"decided": len(ids) - 2, "skipped_leased": 1, "skipped_decided": 1}
    decided = Task.objects.filter(review_status="rejected")
    assert decided.count() == len(ids) - 2
    assert ReviewEvent.objects.filter(action="reject", actor=alice).count() == len(ids) - 2
    assert all(e.after.get("bulk") for e in ReviewEvent.objects.filter(action="reject"))
    assert Review.objects.filter(reviewer=alice, reasons__code="unrealistic-data").count() == len(ids) - 2
    assert fresh(held).review_status == "in_review" and fresh(done).review_status == "approved"


def test_a_large_bulk_decision_runs_as_a_batch_of_chunks(tasks, monkeypatch):
    alice = account("Curator", "alice")
    monkeypatch.setattr(reviews, "BULK_CHUNK", 3)
    ids = [t.pk for t in tasks]
    batch = reviews.start_bulk({"kind": "write"}, ids, alice, "approved", [], "")
    assert batch.kind == "bulk_review" and batch.total_items == -(-len(ids) // 3)
    for item in batch.items.all():
        assert batches.run_item(item.pk, worker="test") == "done"
    batch.refresh_from_db()
    assert batch.status == "done" and batch.counters["decided"] == len(ids)
    assert set(ReviewEvent.objects.filter(batch=batch).values_list("task_id", flat=True)) == set(ids)
    assert Task.objects.filter(review_status="approved").count() == len(ids)


def test_the_bulk_view_confirms_the_count_first_and_decides_only_the_filtered_set(tasks):
    curator = page_client("Curator", "alice")
    kinds = {t.kind for t in tasks}
    kind = sorted(kinds)[0]
    matching = [t.pk for t in tasks if t.kind == kind]
    first = curator.post("/review/bulk/", {"kind": kind, "verdict": "approved"})
    assert f"all <b>{len(matching)}</b> undecided task" in first.content.decode()
    assert not Task.objects.filter(review_status="approved").exists()  # nothing decided before confirming
    stale = curator.post("/review/bulk/", {"kind": kind, "verdict": "approved", "confirm": "yes", "count": "999"})
    assert "undecided task" in stale.content.decode() and not Task.objects.filter(review_status="approved").exists()
    done = curator.post("/review/bulk/", {"kind": kind, "verdict": "approved", "confirm": "yes",
                                          "count": str(len(matching))}, HTTP_HX_REQUEST="true")
    assert done.status_code == 200 and done["HX-Redirect"].startswith("/review/")
    assert sorted(Task.objects.filter(review_status="approved").values_list("pk", flat=True)) == sorted(matching)


# ---------------------------------------------------------------------------------------------
# Views and refusals


def test_next_task_claims_and_opens_the_next_free_task_and_a_decision_moves_on(tasks):
    curator = page_client("Curator", "alice")
    opened = curator.post("/review/next/")
    first = int(opened["Location"].split("/")[2])
    assert fresh(Task.objects.get(pk=first)).lease_holder.username == "alice"
    moved = curator.post(f"/review/tasks/{first}/submit/", {"verdict": "approved"}, HTTP_HX_REQUEST="true")
    following = int(moved["HX-Redirect"].split("/")[2])
    assert following != first and Task.objects.get(pk=following).lease_holder.username == "alice"
    assert Task.objects.get(pk=first).review_status == "approved"


def test_when_nothing_is_left_the_queue_says_so_once(tasks):
    """Flash messages live in the session: shown on the next page, then gone."""
    curator = page_client("Curator", "alice")
    done = curator.post("/review/next/", {"review_status": "approved"}, follow=True)  # nothing approved yet
    assert done.status_code == 200
    assert "Nothing left for you to review under this filter." in done.content.decode()
    assert "Nothing left for you to review" not in curator.get("/review/").content.decode()


def test_a_viewer_may_look_but_not_decide_and_a_post_without_csrf_fails(tasks):
    task = tasks[0]
    viewer = page_client("Viewer", "vera")
    assert viewer.get("/review/").status_code == 200
    assert "Next task for me" not in viewer.get("/review/").content.decode()
    for url in (f"/review/tasks/{task.pk}/claim/", f"/review/tasks/{task.pk}/submit/", "/review/next/", "/review/bulk/"):
        assert viewer.post(url, {"verdict": "approved"}).status_code == 403, url
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(account("Curator", "alice"))
    assert strict.post(f"/review/tasks/{task.pk}/claim/").status_code == 403
    assert fresh(task).review_status == "pending"


def test_a_refused_verdict_shows_why_in_the_panel(tasks):
    curator = page_client("Curator", "alice")
    task = tasks[0]
    curator.post(f"/review/tasks/{task.pk}/claim/")
    answer = curator.post(f"/review/tasks/{task.pk}/submit/", {"verdict": "rejected"})
    assert answer.status_code == 400 and "needs at least one reason" in answer.content.decode()


def test_filters_find_what_they_name(tasks):
    alice = account("Curator", "alice")
    refusal = Task.objects.filter(kind="refusal").count()
    _, found = selectors.filtered_tasks({"refusal": "yes"})
    assert found.count() == refusal
    _, found = selectors.filtered_tasks({"refusal": "no"})
    assert found.count() == len(tasks) - refusal
    flags = [{"code": "leak", "blocking": True, "reason": "x"}]
    Task.objects.filter(pk=tasks[0].pk).update(audit_flags=flags, flag_codes=services.flag_codes(flags))
    _, found = selectors.filtered_tasks({"flag": "leak"})
    assert list(found.values_list("pk", flat=True)) == [tasks[0].pk]
    reviews.claim(tasks[1].pk, alice)
    reviews.submit(tasks[1].pk, alice, "approved")
    _, found = selectors.filtered_tasks({"reviewer": "alice"})
    assert list(found.values_list("pk", flat=True)) == [tasks[1].pk]
    _, found = selectors.filtered_tasks({"review_status": "approved"})
    assert list(found.values_list("pk", flat=True)) == [tasks[1].pk]
    _, found = selectors.filtered_tasks({"runs": "no_runs"})
    assert found.count() == len(tasks)
    rollout, _ = services.start_rollout_batch(agent="null", which="all", trials=1)
    for item in rollout.items.all():
        batches.run_item(item.pk, worker="test")
    _, found = selectors.filtered_tasks({"runs": "some_failed"})
    assert found.count() == len(tasks)  # the null agent fails every task
    _, found = selectors.filtered_tasks({"q": str(tasks[2].pk)})
    assert list(found.values_list("pk", flat=True)) == [tasks[2].pk]


def test_the_queue_page_is_bounded_whatever_the_number_of_tasks(tasks, django_assert_max_num_queries):
    curator = page_client("Curator", "alice")
    curator.get("/review/")
    with django_assert_max_num_queries(16) as few:
        assert curator.get("/review/?kind=write").status_code == 200
    from tests.tasks.test_query_budgets import clone_tasks

    clone_tasks(Task.objects.get(pk=tasks[0].pk), 120)
    with django_assert_max_num_queries(16) as many:
        assert curator.get("/review/?kind=write&page=2").status_code == 200
    assert len(few.captured_queries) == len(many.captured_queries)


def test_the_reason_taxonomy_is_seeded_with_other_needing_a_comment():
    codes = list(RejectionReason.objects.filter(active=True).values_list("code", flat=True))
    assert len(codes) >= 10 and "other" in codes[:9]  # every source covered, "other" reachable by key
    assert set(RejectionReason.objects.values_list("source", flat=True)) == {
        "environment", "tool", "task", "reward", "trajectory"}
    assert RejectionReason.objects.get(code="other").needs_comment


# ---------------------------------------------------------------------------------------------
# Agreement


def test_kappa_matches_worked_examples():
    # Cohen: 50 items, observed agreement .7, chance .5 -> .4 (the classic textbook table).
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)
    assert cohen_kappa([("y", "y"), ("n", "n")]) == pytest.approx(1.0)
    assert cohen_kappa([("y", "y"), ("y", "y")]) is None  # one category only: chance agreement is 1
    # Fleiss (Wikipedia's example: 10 items, 14 raters, 5 categories) -> 0.210.
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    items = [[c for c, n in enumerate(row) for _ in range(n)] for row in table]
    assert fleiss_kappa(items) == pytest.approx(0.210, abs=0.001)
    with pytest.raises(ValueError):
        fleiss_kappa([["a", "b"], ["a"]])


def test_the_queue_shows_agreement_over_tasks_with_several_verdicts(tasks):
    alice, bob = account("Curator", "alice"), account("Curator", "bob")
    for i, task in enumerate(tasks[:6]):
        Review.objects.create(task=task, reviewer=alice, verdict="approved")
        Review.objects.create(task=task, reviewer=bob, verdict="approved" if i % 3 else "rejected")
    result = selectors.agreement(Task.objects.all(), required=2)
    assert result["fleiss_items"] == 6 and result["pairs"][0]["items"] == 6
    assert result["pairs"][0]["kappa"] == pytest.approx(cohen_kappa(
        [("approved", "approved" if i % 3 else "rejected") for i in range(6)]))
    panel = page_client("Curator", "carol").get("/review/agreement/").content.decode()
    assert "Fleiss" in panel and "alice · bob" in panel


def test_review_events_are_readable_in_the_api_by_human_roles(tasks):
    from tests.conftest import api_client

    alice = account("Curator", "alice")
    reviews.claim(tasks[0].pk, alice)
    reviews.submit(tasks[0].pk, alice, "approved")
    body = api_client("Viewer", "vera").get(f"/api/tasks/{tasks[0].pk}/").json()
    assert body["review_status"] == "approved"
    assert json.dumps(body)  # serializable
