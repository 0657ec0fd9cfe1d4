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
from .models import Run, Task


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
    return {"tasks": Task.objects.count(), "runs": Run.objects.count()}


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


def pages(client: Client) -> list[str]:
    count = Task.objects.count()
    middle = max(1, count // 50 // 2)
    task = Task.objects.order_by("pk").only("pk").last()
    run = Run.objects.order_by("pk").only("pk").first()
    urls = ["/tasks/", f"/tasks/?page={middle}", "/tasks/?status=verified", f"/tasks/{task.pk}/"]
    if run is not None:
        urls.append(f"/runs/{run.pk}/")
    return urls
