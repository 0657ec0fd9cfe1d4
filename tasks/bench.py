"""Page benchmarks: fill a throw-away database with many tasks and runs, then time the pages a
curator opens (p50/p95 and the number of queries per page). Used by ``manage.py bench_pages``."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from environments import batches
from environments.services import persist_domain
from environments.synthesis.interface import get_backend
from environments.synthesis.pipeline import synthesize_domain

from . import services
from .models import Review, Run, Task


@contextmanager
def scratch_database() -> Iterator[str]:
    """A fresh, migrated database of the configured engine (SQLite file or PostgreSQL database),
    destroyed afterwards, the way Django's test runner makes one."""
    old_name = connection.settings_dict["NAME"]
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield name
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def fill(tasks: int, runs_per_task: float = 0.1, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """One real domain, a few real tasks and oracle runs, then copies of them up to ``tasks`` rows."""
    result = synthesize_domain(7, get_backend("procedural"), services.env_services.sandbox_config())
    with transaction.atomic():
        domain = persist_domain(result, None)
    batch, _ = services.start_task_batch(domains=[domain], per_domain=4, seed=7)
    for item in batch.items.all():
        batches.run_item(item.pk, worker="bench")
    rollout, _ = services.start_rollout_batch(agent="oracle", which="all", trials=1)
    for item in rollout.items.all():
        batches.run_item(item.pk, worker="bench")
    templates = list(Task.objects.all())
    run_templates = list(Run.objects.all())
    fields = [f.attname for f in Task._meta.concrete_fields if f.attname != "id"]
    run_fields = [f.attname for f in Run._meta.concrete_fields if f.attname not in ("id", "task_id", "batch_id")]
    made = len(templates)
    seed = 1_000_000
    while made < tasks:
        rows = []
        for _ in range(min(2000, tasks - made)):
            template = templates[made % len(templates)]
            row = Task(**{name: getattr(template, name) for name in fields})
            row.seed = seed
            if made % 20 == 0:  # a realistic share of flagged tasks (5 %), so the flag filter has work to do
                row.audit_flags = [{"code": "leak", "blocking": True, "reason": "bench: a copied task marked as leaking"}]
                row.flag_codes = services.flag_codes(row.audit_flags)
                row.status = Task.Status.FLAGGED
            seed += 1
            rows.append(row)
            made += 1
        created = Task.objects.bulk_create(rows)
        if run_templates and runs_per_task:
            every = max(1, round(1 / runs_per_task))
            new_runs = []
            for i, task in enumerate(created):
                if i % every == 0 and task.pk is not None:
                    template = run_templates[i % len(run_templates)]
                    new_runs.append(Run(task_id=task.pk, **{name: getattr(template, name) for name in run_fields}))
            Run.objects.bulk_create(new_runs)
        if progress:
            progress(made)
    review_like_a_team(progress)
    refresh_statistics()
    return {"tasks": Task.objects.count(), "runs": Run.objects.count(), "reviews": Review.objects.count()}


def refresh_statistics() -> None:
    """What a live database has and a freshly bulk-filled one lacks: planner statistics and (on
    PostgreSQL) the visibility map that index-only scans need. Autovacuum would do this a little
    later; the benchmark measures pages, not the minute after a bulk load."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def review_like_a_team(progress: Callable[[int], None] | None = None) -> None:
    """Give the tasks the review state a busy queue has: about 40 % decided (mostly approved), some
    with two verdicts (a few disagreeing), a few leased right now, the rest pending."""
    from django.contrib.auth.models import User
    from django.utils import timezone

    from .models import RejectionReason, ReviewStatus

    alice, _ = User.objects.get_or_create(username="bench-alice")
    bob, _ = User.objects.get_or_create(username="bench-bob")
    reason = RejectionReason.objects.filter(active=True).order_by("position").first()
    ids = list(Task.objects.order_by("pk").values_list("pk", flat=True))
    plan = {ReviewStatus.APPROVED: [], ReviewStatus.REJECTED: [], ReviewStatus.NEEDS_CHANGES: [],
            ReviewStatus.IN_REVIEW: []}
    for n, pk in enumerate(ids):
        slot = n % 20
        if slot < 5:
            plan[ReviewStatus.APPROVED].append(pk)
        elif slot < 7:
            plan[ReviewStatus.REJECTED].append(pk)
        elif slot == 7:
            plan[ReviewStatus.NEEDS_CHANGES].append(pk)
        elif slot == 8 and n % 100 == 8:
            plan[ReviewStatus.IN_REVIEW].append(pk)
    now = timezone.now()
    for status, chosen in plan.items():
        for start in range(0, len(chosen), 5000):
            part = chosen[start:start + 5000]
            if status == ReviewStatus.IN_REVIEW:
                Task.objects.filter(pk__in=part).update(review_status=status, lease_holder=alice,
                                                        lease_expires_at=now + timezone.timedelta(hours=1))
            else:
                Task.objects.filter(pk__in=part).update(review_status=status, reviewed_at=now)
    verdicts = []
    for status, chosen in plan.items():
        if status == ReviewStatus.IN_REVIEW:
            continue
        for n, pk in enumerate(chosen):
            verdicts.append(Review(task_id=pk, reviewer=alice, verdict=status))
            if n % 4 == 0:  # a second reviewer on a quarter of them, disagreeing on one in ten
                verdicts.append(Review(task_id=pk, reviewer=bob, verdict=status if n % 40 else ReviewStatus.APPROVED
                                       if status != ReviewStatus.APPROVED else ReviewStatus.REJECTED))
    made = Review.objects.bulk_create(verdicts, batch_size=5000)
    if reason is not None:
        through = Review.reasons.through
        through.objects.bulk_create([through(review_id=r.pk, rejectionreason_id=reason.pk) for r in made
                                     if r.verdict == ReviewStatus.REJECTED and r.pk], batch_size=5000)
    if progress:
        progress(len(ids))


def time_page(client: Client, url: str, repeat: int) -> dict[str, Any]:
    client.get(url)  # warm caches (templates, the domain view)
    times = []
    queries = 0
    status = 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        queries = len(captured.captured_queries)
        status = response.status_code
    times.sort()
    return {"url": url, "status": status, "queries": queries, "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[min(len(times) - 1, int(0.95 * len(times)))], 1)}


def signed_in_client() -> Client:
    """A client signed in as a curator (every page needs an account)."""
    from environments.services import create_account

    user, _password, _token = create_account("bench-curator", "curator", password="bench-Secret-123")
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def pages(client: Client) -> list[str]:
    count = Task.objects.count()
    middle = max(1, count // 50 // 2)
    task = Task.objects.order_by("pk").only("pk").last()
    run = Run.objects.order_by("pk").only("pk").first()
    urls = ["/tasks/", f"/tasks/?page={middle}", "/tasks/?status=verified", f"/tasks/{task.pk}/",
            "/review/", f"/review/?page={middle}", "/review/?review_status=pending", "/review/?flag=leak",
            "/review/?kind=write&complexity=hard&q=booking", "/review/?disagreement=true", "/review/agreement/",
            f"/tasks/{task.pk}/?review_status=pending"]
    if run is not None:
        urls.append(f"/runs/{run.pk}/")
    return urls
