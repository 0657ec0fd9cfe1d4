"""One lifecycle for all background work: batches of items, a registry of batch kinds, and the
function that owns an item from claim to finish.

A *batch* is one invocation of background work (a synthesis, a task-making run, a rollout, an
export...) and its *items* are the units of work, one job each. Every kind of work goes through
:func:`run_item`, which owns claim → link an existing result → compute → retry or fail → persist →
finish, with persist and finish in one transaction. A kind supplies only its own small callables
(:class:`BatchKind`), registered from its app's ``AppConfig.ready()``; jobs are enqueued by name
(``send_task``), so no app imports another app's jobs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from environments.runtime.executor import SandboxError
from environments.runtime.statekit import canonical_json

from .models import Batch, BatchItem

logger = logging.getLogger(__name__)

# What the lifecycle hands back: the primary key of the stored result and the item's counters.
Outcome = tuple[int | None, dict[str, Any]]


@dataclass(frozen=True)
class BatchKind:
    """How one kind of background work plugs into the lifecycle.

    ``existing(item)`` finds a result that is already stored (an earlier attempt, another batch);
    ``compute(item)`` does the work outside any transaction (it may take minutes, it may raise);
    ``persist(item, computed)`` stores it inside the transaction that also finishes the item;
    ``progress(batch)`` says in a few words what the batch's counters mean so far.
    """

    name: str
    job_name: str
    noun: str  # what one item makes, plural: "domains", "tasks", "episodes"
    compute: Callable[[BatchItem], Any]
    persist: Callable[[BatchItem, Any], Outcome]
    existing: Callable[[BatchItem], Outcome | None]
    progress: Callable[[Batch], str] = lambda batch: ""
    result_url: Callable[[int], str] | None = None
    # Infrastructure failures: the item goes back to the queue and the job's own retry takes it.
    retry_on: tuple[type[BaseException], ...] = field(default=(SandboxError,))
    # The job a batch's items run as when it depends on the batch (``scaleenv.llm_*`` jobs go to the
    # ``llm`` queue); None: ``job_name``.
    job_for: Callable[[Batch], str] | None = None


_KINDS: dict[str, BatchKind] = {}

# Options every batch job shares (Celery ``shared_task`` keywords): late acks so a killed worker's
# job is redelivered, retries with backoff for infrastructure errors, results kept in our rows.
JOB_OPTIONS: dict[str, Any] = {
    "bind": True, "acks_late": True, "ignore_result": True,
    "autoretry_for": (SandboxError, OperationalError), "retry_backoff": 5, "retry_backoff_max": 300,
    "retry_jitter": True, "max_retries": 3,
}


def register(kind: BatchKind) -> None:
    """Add a kind (idempotent for the same kind; called from ``AppConfig.ready()``)."""
    current = _KINDS.get(kind.name)
    if current is not None and current.job_name != kind.job_name:
        raise ValueError(f"batch kind {kind.name!r} is already registered with job {current.job_name}")
    _KINDS[kind.name] = kind


def get_kind(name: str) -> BatchKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise LookupError(f"no batch kind {name!r} is registered (known: {', '.join(sorted(_KINDS))})") from None


def kinds() -> list[BatchKind]:
    return [_KINDS[name] for name in sorted(_KINDS)]


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def params_key(kind: str, backend: str, params: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json({"kind": kind, "backend": backend, "params": params}).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Starting and enqueuing


def get_or_create_batch(*, kind: str, backend: str, params: dict[str, Any],
                        items: Callable[[], list[BatchItem]]) -> tuple[Batch, bool]:
    """The batch for these parameters, created with its items on first call (the same command
    twice resumes the same batch and never duplicates work)."""
    get_kind(kind)
    with transaction.atomic():
        batch, created = Batch.objects.get_or_create(
            params_key=params_key(kind, backend, params), defaults={"kind": kind, "backend": backend, "params": params})
        if created:
            new_items = items()
            for item in new_items:
                item.batch = batch
            BatchItem.objects.bulk_create(new_items, batch_size=1000)
            batch.total_items = len(new_items)
            batch.save(update_fields=["total_items"])
    return batch, created


def pending_item_ids(batch: Batch) -> list[int]:
    return list(batch.items.filter(status__in=[BatchItem.Status.QUEUED, BatchItem.Status.RETRY])
                .order_by("pk").values_list("pk", flat=True))


def _job_name(kind: BatchKind, batch: Batch) -> str:
    return kind.job_for(batch) if kind.job_for is not None else kind.job_name


def _send(kind: BatchKind, item_ids: list[int], job_name: str) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:  # development only: run inline (send_task ignores eager mode)
        for item_id in item_ids:
            run_item(item_id)
        return
    from celery import current_app

    for item_id in item_ids:
        current_app.send_task(job_name, args=[item_id])


def enqueue(batch: Batch, retry_failed: bool = False) -> int:
    """Send one job per claimable item, after the current transaction commits."""
    reopen_unfinished_items(batch, retry_failed=retry_failed)
    ids = pending_item_ids(batch)
    kind = get_kind(batch.kind)
    if ids:
        job_name = _job_name(kind, batch)
        transaction.on_commit(lambda: _send(kind, ids, job_name))
    return len(ids)


def requeue_lost_items(batch: Batch) -> int:
    """Send jobs again for items whose worker died or whose lease expired (no duplicate messages
    for items that are still waiting in the broker)."""
    if not reopen_unfinished_items(batch):
        return 0
    ids = list(batch.items.filter(status=BatchItem.Status.RETRY).values_list("pk", flat=True))
    kind = get_kind(batch.kind)
    job_name = _job_name(kind, batch)
    transaction.on_commit(lambda: _send(kind, ids, job_name))
    return len(ids)


def reopen_unfinished_items(batch: Batch, retry_failed: bool = False) -> int:
    """Make items that a dead or vanished worker left behind claimable again; returns how many.

    ``retry_failed`` also reopens items that failed (not poisoned ones): re-running a command is
    the user asking for another try.
    """
    now = timezone.now()
    reopened = 0
    for item in batch.items.filter(status=BatchItem.Status.RUNNING).only("pk", "claimed_by"):
        if _owner_dead_here(item.claimed_by):
            reopened += BatchItem.objects.filter(pk=item.pk, status=BatchItem.Status.RUNNING,
                                                 claimed_by=item.claimed_by).update(status=BatchItem.Status.RETRY)
    reopened += batch.items.filter(status=BatchItem.Status.RUNNING, lease_expires_at__lt=now).update(
        status=BatchItem.Status.RETRY)
    if retry_failed:
        reopened += batch.items.filter(status=BatchItem.Status.FAILED).update(status=BatchItem.Status.RETRY, attempts=0)
    if reopened and batch.finished:
        Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.RUNNING, finished_at=None)
    return reopened


def _owner_dead_here(claimed_by: str) -> bool:
    host, _, pid = claimed_by.rpartition(":")
    host = host.removeprefix("cli:")
    return host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------------------------
# The lifecycle of one item


def claim_item(item_id: int, worker: str) -> BatchItem | None:
    """Claim an item with a conditional update; None when another delivery has it or it is done.

    A claim that exceeds ``SCALEENV_JOB_ATTEMPTS`` poisons the item instead (a job whose worker
    dies every time must not loop forever)."""
    lease = timezone.now() + timedelta(seconds=settings.SCALEENV_ITEM_LEASE_SECONDS)
    with transaction.atomic():
        claimable = Q(status__in=[BatchItem.Status.QUEUED, BatchItem.Status.RETRY]) | Q(
            status=BatchItem.Status.RUNNING, lease_expires_at__lt=timezone.now())
        # A redelivery after its worker process died on this host (SIGKILL, OOM): take it over.
        holder = BatchItem.objects.filter(pk=item_id, status=BatchItem.Status.RUNNING).values_list(
            "claimed_by", flat=True).first()
        if holder and _owner_dead_here(holder):
            claimable |= Q(status=BatchItem.Status.RUNNING, claimed_by=holder)
        updated = BatchItem.objects.filter(claimable, pk=item_id).update(
            status=BatchItem.Status.RUNNING, claimed_by=worker, lease_expires_at=lease)
        if not updated:
            return None
        item = BatchItem.objects.select_related("batch").get(pk=item_id)
        item.attempts += 1
        item.save(update_fields=["attempts"])
        if item.attempts > settings.SCALEENV_JOB_ATTEMPTS:
            item.status = BatchItem.Status.POISONED
            item.error = (f"gave up after {item.attempts - 1} attempts (the worker died or crashed each time); "
                          f"last error: {item.error or 'none recorded'}")
            item.save(update_fields=["status", "error"])
            refresh_batch(item.batch_id)
            return None
        Batch.objects.filter(pk=item.batch_id, status=Batch.Status.QUEUED).update(
            status=Batch.Status.RUNNING, started_at=timezone.now())
    return item


def run_item(item_id: int, worker: str | None = None) -> str:
    """Do one item of any kind end to end; returns what happened: ``done``, ``linked`` (its result
    already existed), ``failed`` (recorded on the item), ``skipped`` (claimed elsewhere or finished)
    or ``missing``. Idempotent: a duplicate delivery finds the item claimed or done."""
    kind_name = BatchItem.objects.filter(pk=item_id).values_list("batch__kind", flat=True).first()
    if kind_name is None:
        return "missing"
    kind = get_kind(kind_name)
    item = claim_item(item_id, worker or worker_identity())
    if item is None:
        return "skipped"
    started = time.perf_counter()
    with transaction.atomic():
        found = kind.existing(item)
        if found is not None:
            finish_item(item, *found, seconds=0.0)
            return "linked"
    try:
        computed = kind.compute(item)
    except kind.retry_on as exc:
        # Give the item back so the job's retry (or another worker) takes it; not a content failure.
        BatchItem.objects.filter(pk=item.pk).update(status=BatchItem.Status.RETRY, lease_expires_at=None,
                                                    error=f"{type(exc).__name__}: {exc}"[:4000])
        raise
    except Exception as exc:  # noqa: BLE001 - a content failure: recorded on the item, the batch goes on
        logger.exception("%s item %s failed", kind.name, item.pk)
        fail_item(item, f"{type(exc).__name__}: {exc}", time.perf_counter() - started)
        return "failed"
    try:
        with transaction.atomic():
            result_id, counters = kind.persist(item, computed)
            finish_item(item, result_id, counters, seconds=time.perf_counter() - started)
    except IntegrityError:
        # Another delivery stored the same result first: link to it.
        with transaction.atomic():
            found = kind.existing(item)
            if found is None:
                fail_item(item, "the result could not be stored (integrity error) and no stored result exists",
                          time.perf_counter() - started)
                return "failed"
            finish_item(item, *found, seconds=time.perf_counter() - started)
        return "linked"
    return "done"


def finish_item(item: BatchItem, result_id: int | None, counters: dict[str, Any], seconds: float) -> None:
    """Mark an item done with its result and counters (call inside the transaction that stored it)."""
    BatchItem.objects.filter(pk=item.pk).update(status=BatchItem.Status.DONE, result_id=result_id, counters=counters,
                                                seconds=round(seconds, 3), error="", lease_expires_at=None)
    refresh_batch(item.batch_id)


def fail_item(item: BatchItem, error: str, seconds: float) -> None:
    with transaction.atomic():
        BatchItem.objects.filter(pk=item.pk).update(status=BatchItem.Status.FAILED, error=error[:4000],
                                                    seconds=round(seconds, 3), lease_expires_at=None)
        refresh_batch(item.batch_id)


def refresh_batch(batch_id: int) -> None:
    """Recompute the batch's progress and counters from its items (idempotent: a redelivery never
    counts twice)."""
    batch = Batch.objects.select_for_update().get(pk=batch_id)
    items = list(batch.items.values("status", "counters", "seconds"))
    done = [i for i in items if i["status"] == BatchItem.Status.DONE]
    failed = [i for i in items if i["status"] in (BatchItem.Status.FAILED, BatchItem.Status.POISONED)]
    totals: dict[str, float] = {}
    for i in done:
        for key, value in (i["counters"] or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                totals[key] = totals.get(key, 0) + value
    batch.done_items, batch.failed_items = len(done), len(failed)
    batch.counters = {k: round(v, 6) if isinstance(v, float) else v for k, v in totals.items()}
    batch.metrics = {"item_seconds_total": round(sum(i["seconds"] or 0 for i in done), 3),
                     "item_seconds_max": round(max((i["seconds"] or 0 for i in done), default=0), 3)}
    if batch.started_at is None:
        batch.started_at = timezone.now()
        batch.status = Batch.Status.RUNNING
    if batch.done_items + batch.failed_items >= batch.total_items:
        batch.status = Batch.Status.DONE if not failed else (Batch.Status.PARTIAL if done else Batch.Status.FAILED)
        batch.finished_at = batch.finished_at or timezone.now()
    batch.save()


def progress_text(batch: Batch) -> str:
    try:
        return get_kind(batch.kind).progress(batch)
    except LookupError:
        return ""


def noun(batch: Batch) -> str:
    try:
        return get_kind(batch.kind).noun
    except LookupError:
        return "items"
