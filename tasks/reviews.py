"""Reviewing tasks: leases, verdicts, decisions, adjudication, bulk decisions (services: writes).

The review status on the task row is the one authoritative field (exports read only it):
``pending → in_review (leased) → approved | rejected | needs_changes``. Every transition is a
conditional update (two people can never both win) and writes a ``ReviewEvent`` with the actor,
the time, from and to, reasons, comment, and the fields before and after.

A reviewer takes a task with a lease (``SCALEENV_REVIEW_LEASE_SECONDS``, renewed by the open page);
an expired lease counts as pending and any reviewer may take the task. A queue may require several
agreeing verdicts: a verdict before the last one puts the task back to pending for the others
(who do not see it until they give their own), and verdicts that disagree put it on the
adjudication list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import RejectionReason, Review, ReviewEvent, ReviewQueue, ReviewStatus, Task

DECIDED = (ReviewStatus.APPROVED, ReviewStatus.REJECTED, ReviewStatus.NEEDS_CHANGES)
VERDICT_STATUS = {Review.Verdict.APPROVED: ReviewStatus.APPROVED, Review.Verdict.REJECTED: ReviewStatus.REJECTED,
                  Review.Verdict.NEEDS_CHANGES: ReviewStatus.NEEDS_CHANGES}
ACTION_OF = {ReviewStatus.APPROVED: ReviewEvent.Action.APPROVE, ReviewStatus.REJECTED: ReviewEvent.Action.REJECT,
             ReviewStatus.NEEDS_CHANGES: ReviewEvent.Action.NEEDS_CHANGES}


class ReviewError(Exception):
    """A review request that cannot be done as asked; the message says why (a 409 or a 400)."""

    status = 409


class InvalidVerdict(ReviewError):
    status = 400


# The seeded taxonomy (migration 0010 made these; the admin edits them). Kept here too so a
# database that lost them (a flushed test database) can be seeded again: seed_reasons().
REASONS = [
    ("unsolvable", "Unsolvable task", "task", "No sequence of the domain's tools reaches the expected state.", False),
    ("missing-value", "Instruction lacks a needed value", "task",
     "The user scenario never gives a value the gold calls need (an id, a date, an amount).", False),
    ("leaked-answer", "Leaked answer", "task",
     "The user gives away what the agent should find out (ids, the answer of a question).", False),
    ("wrong-state-check", "Wrong state check", "reward",
     "The reward checks a column it should not, or misses one it should (column policies).", False),
    ("inaction-passes", "Inaction passes (no-op gold)", "reward",
     "Doing nothing, or less than asked, would earn the reward.", False),
    ("hallucinated", "Hallucinated tool or fact", "task",
     "The scenario names a tool, record or fact the environment does not have.", False),
    ("broken-dependency", "Broken dependency", "tool",
     "A tool's output does not feed the next step as the graph says, or a tool misbehaves.", False),
    ("unrealistic-data", "Unrealistic data", "environment",
     "Names, amounts, dates or states no real system would hold.", False),
    ("other", "Other", "task", "Anything else: say what in the comment.", True),
    ("duplicate", "Duplicate", "task", "The same task as another one (same goal on the same records).", False),
    ("unsafe-content", "Unsafe content", "task", "Content that must not be used for training.", False),
    ("user-off-script", "User simulator off script", "trajectory",
     "The simulated user says what the scenario does not support, or stops too early.", False),
]


def seed_reasons() -> int:
    """Create the seeded reasons that are missing; returns how many were made."""
    made = 0
    for position, (code, label, source, description, needs_comment) in enumerate(REASONS, start=1):
        _, created = RejectionReason.objects.get_or_create(code=code, defaults={
            "label": label, "source": source, "description": description, "needs_comment": needs_comment,
            "position": position})
        made += int(created)
    return made


def lease_seconds() -> int:
    return int(getattr(settings, "SCALEENV_REVIEW_LEASE_SECONDS", 600))


def default_queue() -> ReviewQueue:
    queue = ReviewQueue.objects.filter(is_default=True).first()
    if queue is None:  # a database whose seeded queue was deleted
        queue, _ = ReviewQueue.objects.get_or_create(slug="default", defaults={"name": "All tasks", "is_default": True})
    return queue


def queue_of(task: Task) -> ReviewQueue:
    return task.queue if task.queue_id else default_queue()


def _snapshot(task: Task) -> dict[str, Any]:
    return {"review_status": task.review_status, "lease_holder": task.lease_holder_id,
            "lease_expires_at": task.lease_expires_at.isoformat() if task.lease_expires_at else None}


def _event(task: Task, actor: Any, action: str, before: dict[str, Any], *, reasons: list[str] | None = None,
           comment: str = "", batch: Any = None, extra: dict[str, Any] | None = None) -> ReviewEvent:
    after = {**_snapshot(task), **(extra or {})}
    return ReviewEvent.objects.create(task=task, actor=actor, action=action, from_status=before["review_status"],
                                      to_status=task.review_status, reasons=reasons or [], comment=comment,
                                      before=before, after=after, batch=batch)


def _free(now: Any) -> Q:
    """Tasks anyone may take now: pending, or in review under an expired lease."""
    return Q(review_status=ReviewStatus.PENDING) | Q(review_status=ReviewStatus.IN_REVIEW, lease_expires_at__lte=now)


def _locked(task_id: int) -> Task:
    task = Task.objects.select_for_update().only(
        "id", "review_status", "lease_holder_id", "lease_expires_at", "queue_id", "reviewed_at").filter(
        pk=task_id).first()
    if task is None:
        raise ReviewError(f"there is no task {task_id}")
    return task


# ---------------------------------------------------------------------------------------------
# Leases


@dataclass(frozen=True)
class Lease:
    task_id: int
    holder: str
    expires_at: Any
    mine: bool


def claim(task_id: int, user: Any) -> Lease:
    """Take (or renew) the lease on a task for ``user``; refused while someone else holds it, when
    the task is decided, or when this reviewer already gave a verdict and others must still."""
    now = timezone.now()
    with transaction.atomic():
        task = _locked(task_id)
        if task.review_status in DECIDED:
            raise ReviewError(f"task {task_id} is already {task.get_review_status_display().lower()}; reopen it to review again")
        held = task.review_status == ReviewStatus.IN_REVIEW and task.lease_expires_at and task.lease_expires_at > now
        if held and task.lease_holder_id != user.pk:
            holder = get_user_model().objects.filter(pk=task.lease_holder_id).values_list("username", flat=True).first()
            raise ReviewError(f"{holder or 'someone'} is reviewing task {task_id} until "
                              f"{timezone.localtime(task.lease_expires_at):%H:%M}")
        if not held and Review.objects.filter(task_id=task_id, reviewer=user).exists():
            raise ReviewError(f"you already gave your verdict on task {task_id}; other reviewers give theirs next")
        before = _snapshot(task)
        expires = now + timedelta(seconds=lease_seconds())
        Task.objects.filter(pk=task_id).update(review_status=ReviewStatus.IN_REVIEW, lease_holder=user,
                                               lease_expires_at=expires)
        task.review_status, task.lease_holder_id, task.lease_expires_at = ReviewStatus.IN_REVIEW, user.pk, expires
        if not held:  # a renewal is not an event: the open page renews every minute
            if before["review_status"] == ReviewStatus.IN_REVIEW:  # someone else's lease had run out
                _event(task, None, ReviewEvent.Action.LEASE_EXPIRED, before,
                       extra={"expired_holder": before["lease_holder"]})
                before = {**before, "review_status": ReviewStatus.PENDING}
            _event(task, user, ReviewEvent.Action.CLAIM, before)
    return Lease(task_id, user.get_username(), expires, True)


def release(task_id: int, user: Any) -> bool:
    """Give the task back to the queue (only the holder); False when the user held no lease."""
    with transaction.atomic():
        task = _locked(task_id)
        if task.review_status != ReviewStatus.IN_REVIEW or task.lease_holder_id != user.pk:
            return False
        before = _snapshot(task)
        Task.objects.filter(pk=task_id).update(review_status=ReviewStatus.PENDING, lease_holder=None,
                                               lease_expires_at=None)
        task.review_status, task.lease_holder_id, task.lease_expires_at = ReviewStatus.PENDING, None, None
        _event(task, user, ReviewEvent.Action.RELEASE, before)
    return True


def expire_leases() -> int:
    """Put tasks whose lease ran out back to pending, with an event each (a cron job; the queue
    already treats them as free)."""
    now = timezone.now()
    expired = 0
    for task_id in Task.objects.filter(review_status=ReviewStatus.IN_REVIEW, lease_expires_at__lte=now).values_list(
            "pk", flat=True):
        with transaction.atomic():
            task = _locked(task_id)
            if task.review_status != ReviewStatus.IN_REVIEW or not task.lease_expires_at or task.lease_expires_at > now:
                continue
            before = _snapshot(task)
            Task.objects.filter(pk=task_id).update(review_status=ReviewStatus.PENDING, lease_holder=None,
                                                   lease_expires_at=None)
            task.review_status, task.lease_holder_id, task.lease_expires_at = ReviewStatus.PENDING, None, None
            _event(task, None, ReviewEvent.Action.LEASE_EXPIRED, before, extra={"expired_holder": before["lease_holder"]})
            expired += 1
    return expired


# ---------------------------------------------------------------------------------------------
# Verdicts


def _reasons(verdict: str, codes: list[str], comment: str) -> list[RejectionReason]:
    reasons = list(RejectionReason.objects.filter(code__in=codes, active=True))
    unknown = set(codes) - {r.code for r in reasons}
    if unknown:
        raise InvalidVerdict(f"unknown or retired reason(s): {', '.join(sorted(unknown))}")
    if verdict == Review.Verdict.REJECTED and not reasons:
        raise InvalidVerdict("a rejection needs at least one reason")
    if verdict == Review.Verdict.NEEDS_CHANGES and not reasons and not comment.strip():
        raise InvalidVerdict("say what needs to change: pick a reason or write a comment")
    needing = [r.label for r in reasons if r.needs_comment]
    if needing and not comment.strip():
        raise InvalidVerdict(f"the reason {needing[0]!r} needs a comment")
    if verdict == Review.Verdict.APPROVED and reasons:
        raise InvalidVerdict("an approval takes no rejection reasons")
    return reasons


@dataclass(frozen=True)
class Decision:
    task_id: int
    status: str  # the task's review status now
    verdicts: int  # verdicts given in this round
    required: int
    disagreement: bool


def _checked_verdict(verdict: str, reasons: list[str] | None, comment: str) -> tuple[str, list[RejectionReason]]:
    """The comment as stored and the chosen reasons, or InvalidVerdict / a refusal saying what is missing."""
    if verdict not in Review.Verdict.values:
        raise InvalidVerdict(f"the verdict must be one of {', '.join(Review.Verdict.values)}")
    comment = (comment or "").strip()[:4000]
    return comment, _reasons(verdict, list(dict.fromkeys(reasons or [])), comment)


def _record_verdict(task_id: int, user: Any, verdict: str, comment: str, chosen: list[RejectionReason],
                    adjudication: bool) -> None:
    review, _ = Review.objects.update_or_create(task_id=task_id, reviewer=user, defaults={
        "verdict": verdict, "comment": comment, "adjudication": adjudication})
    review.reasons.set(chosen)


def submit(task_id: int, user: Any, verdict: str, reasons: list[str] | None = None, comment: str = "") -> Decision:
    """The holder's verdict on a task. With enough agreeing verdicts the task is decided; with too
    few it goes back to pending for the next reviewer; with disagreeing ones it waits for an
    adjudicator."""
    comment, chosen = _checked_verdict(verdict, reasons, comment)
    now = timezone.now()
    with transaction.atomic():
        task = _locked(task_id)
        if task.review_status != ReviewStatus.IN_REVIEW or task.lease_holder_id != user.pk or (
                task.lease_expires_at and task.lease_expires_at <= now):
            raise ReviewError(f"you do not hold the review of task {task_id} (it may have expired or been taken); "
                              "open it again")
        _record_verdict(task_id, user, verdict, comment, chosen, adjudication=False)
        queue = queue_of(task)
        verdicts = list(Review.objects.filter(task_id=task_id, adjudication=False).values_list("verdict", flat=True))
        before = _snapshot(task)
        codes = [r.code for r in chosen]
        disagreement = len(set(verdicts)) > 1
        if len(verdicts) >= queue.reviews_required and not disagreement:
            status = VERDICT_STATUS[verdict]
            Task.objects.filter(pk=task_id).update(review_status=status, lease_holder=None, lease_expires_at=None,
                                                   reviewed_at=now)
            task.review_status, task.lease_holder_id, task.lease_expires_at = status, None, None
            _event(task, user, ACTION_OF[status], before, reasons=codes, comment=comment,
                   extra={"verdicts": len(verdicts), "required": queue.reviews_required})
        else:
            Task.objects.filter(pk=task_id).update(review_status=ReviewStatus.PENDING, lease_holder=None,
                                                   lease_expires_at=None)
            task.review_status, task.lease_holder_id, task.lease_expires_at = ReviewStatus.PENDING, None, None
            _event(task, user, ReviewEvent.Action.VERDICT, before, reasons=codes, comment=comment,
                   extra={"verdict": verdict, "verdicts": len(verdicts), "required": queue.reviews_required,
                          "disagreement": disagreement})
    return Decision(task_id, task.review_status, len(verdicts), queue.reviews_required, disagreement)


def adjudicate(task_id: int, user: Any, verdict: str, reasons: list[str] | None = None, comment: str = "") -> Decision:
    """Decide a task whose reviewers disagree (or any undecided task, by a curator's authority)."""
    comment, chosen = _checked_verdict(verdict, reasons, comment)
    now = timezone.now()
    with transaction.atomic():
        task = _locked(task_id)
        if task.review_status in DECIDED:
            raise ReviewError(f"task {task_id} is already {task.get_review_status_display().lower()}")
        if (task.review_status == ReviewStatus.IN_REVIEW and task.lease_holder_id != user.pk
                and task.lease_expires_at and task.lease_expires_at > now):
            raise ReviewError(f"someone is reviewing task {task_id} right now")
        _record_verdict(task_id, user, verdict, comment, chosen, adjudication=True)
        before = _snapshot(task)
        status = VERDICT_STATUS[verdict]
        Task.objects.filter(pk=task_id).update(review_status=status, lease_holder=None, lease_expires_at=None,
                                               reviewed_at=now)
        task.review_status, task.lease_holder_id, task.lease_expires_at = status, None, None
        _event(task, user, ReviewEvent.Action.ADJUDICATE, before, reasons=[r.code for r in chosen], comment=comment,
               extra={"verdict": verdict})
    return Decision(task_id, status, Review.objects.filter(task_id=task_id).count(), queue_of(task).reviews_required,
                    False)


def reopen(task_id: int, user: Any, comment: str = "") -> None:
    """Send a decided task back to pending for a new round (its verdicts stay in the history)."""
    with transaction.atomic():
        task = _locked(task_id)
        if task.review_status not in DECIDED:
            raise ReviewError(f"task {task_id} is not decided")
        before = _snapshot(task)
        Review.objects.filter(task_id=task_id).delete()
        Task.objects.filter(pk=task_id).update(review_status=ReviewStatus.PENDING, reviewed_at=None)
        task.review_status = ReviewStatus.PENDING
        _event(task, user, ReviewEvent.Action.REOPEN, before, comment=(comment or "").strip()[:4000])


# ---------------------------------------------------------------------------------------------
# Bulk decisions


def decide_many(task_ids: list[int], user: Any, verdict: str, reasons: list[str] | None = None, comment: str = "",
                batch: Any = None) -> dict[str, int]:
    """The same decision on many tasks, each with its own event: a curator's authority, like an
    adjudication. Tasks someone else is reviewing right now, and decided ones, are skipped."""
    if verdict not in Review.Verdict.values:
        raise InvalidVerdict(f"the verdict must be one of {', '.join(Review.Verdict.values)}")
    comment = (comment or "").strip()[:4000]
    chosen = _reasons(verdict, list(dict.fromkeys(reasons or [])), comment)
    codes = [r.code for r in chosen]
    status = VERDICT_STATUS[verdict]
    now = timezone.now()
    counts = {"decided": 0, "skipped_leased": 0, "skipped_decided": 0}
    with transaction.atomic():
        tasks = list(Task.objects.select_for_update().filter(pk__in=task_ids).only(
            "id", "review_status", "lease_holder_id", "lease_expires_at", "queue_id"))
        events, decided = [], []
        for task in tasks:
            if task.review_status in DECIDED:
                counts["skipped_decided"] += 1
                continue
            if (task.review_status == ReviewStatus.IN_REVIEW and task.lease_holder_id != user.pk
                    and task.lease_expires_at and task.lease_expires_at > now):
                counts["skipped_leased"] += 1
                continue
            before = _snapshot(task)
            task.review_status, task.lease_holder_id, task.lease_expires_at = status, None, None
            events.append(ReviewEvent(task=task, actor=user, action=ACTION_OF[status], from_status=before["review_status"],
                                      to_status=status, reasons=codes, comment=comment, before=before,
                                      after={**_snapshot(task), "bulk": True}, batch=batch))
            decided.append(task.pk)
        Task.objects.filter(pk__in=decided).update(review_status=status, lease_holder=None, lease_expires_at=None,
                                                   reviewed_at=now)
        ReviewEvent.objects.bulk_create(events, batch_size=500)
        Review.objects.filter(task_id__in=decided, reviewer=user).delete()
        made = Review.objects.bulk_create([Review(task_id=pk, reviewer=user, verdict=verdict, comment=comment,
                                                  adjudication=True) for pk in decided], batch_size=500)
        if chosen:
            through = Review.reasons.through
            through.objects.bulk_create([through(review_id=r.pk, rejectionreason_id=reason.pk)
                                         for r in made for reason in chosen], batch_size=1000)
        counts["decided"] = len(decided)
    return counts


def undecided(tasks: QuerySet[Task]) -> QuerySet[Task]:
    return tasks.exclude(review_status__in=DECIDED)


# ---------------------------------------------------------------------------------------------
# Bulk decisions as background work (a batch of chunks; each task still gets its own event)

BULK_CHUNK = 500


def start_bulk(filters: dict[str, Any], task_ids: list[int], user: Any, verdict: str, reasons: list[str] | None,
               comment: str) -> Any:
    """A ``bulk_review`` batch over ``task_ids`` (the filtered set, frozen now), enqueued."""
    from environments import batches
    from environments.models import BatchItem

    if verdict not in Review.Verdict.values:
        raise InvalidVerdict(f"the verdict must be one of {', '.join(Review.Verdict.values)}")
    _reasons(verdict, list(dict.fromkeys(reasons or [])), comment or "")
    params = {"filters": filters, "verdict": verdict, "reasons": sorted(set(reasons or [])),
              "comment": (comment or "").strip()[:4000], "actor": user.pk, "count": len(task_ids),
              "requested_at": timezone.now().isoformat()}
    chunks = [task_ids[i:i + BULK_CHUNK] for i in range(0, len(task_ids), BULK_CHUNK)]
    with transaction.atomic():
        batch, _ = batches.get_or_create_batch(
            kind="bulk_review", backend="review", params=params,
            items=lambda: [BatchItem(item_key=str(n), seed=n, payload={"task_ids": chunk})
                           for n, chunk in enumerate(chunks)])
        batches.enqueue(batch)
    return batch


def _bulk_existing(item: Any) -> None:
    return None  # deciding is idempotent: a redelivered chunk skips the tasks already decided


def _bulk_compute(item: Any) -> None:
    return None  # all the work is in the transaction that finishes the item


def _bulk_persist(item: Any, _computed: None) -> tuple[None, dict[str, int]]:
    from django.contrib.auth import get_user_model

    params = item.batch.params
    actor = get_user_model().objects.get(pk=params["actor"])
    counts = decide_many(item.payload["task_ids"], actor, params["verdict"], params["reasons"], params["comment"],
                         batch=item.batch)
    return None, counts


def _bulk_progress(batch: Any) -> str:
    counters = batch.counters or {}
    return (f"{counters.get('decided', 0)} decided, {counters.get('skipped_leased', 0)} skipped (being reviewed), "
            f"{counters.get('skipped_decided', 0)} already decided")


def bulk_kind() -> Any:
    from environments.batches import BatchKind

    return BatchKind(name="bulk_review", job_name="scaleenv.bulk_review", noun="chunks", compute=_bulk_compute,
                     persist=_bulk_persist, existing=_bulk_existing, progress=_bulk_progress, retry_on=())
