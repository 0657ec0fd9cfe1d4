"""What every command that runs a batch of jobs shares: enqueue, wait with progress, and run the
jobs in-process (on every core) when no Celery worker answers."""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from environments import batches, local_pool, selectors
from environments.models import Batch, BatchItem


class BatchCommand(BaseCommand):
    def add_job_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--worker-wait", type=float, default=settings.SCALEENV_WORKER_WAIT,
                            help="seconds to wait for a Celery worker to claim a job before running jobs in-process")
        parser.add_argument("--in-process", action="store_true", help="do not wait for a worker at all")
        parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                            help="processes used when the jobs run in-process (default: all cores)")
        parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")

    def execute_batch(self, batch: Batch, created: bool, opts: dict[str, Any]) -> float:
        """Enqueue, wait or run in-process; returns the wall time in seconds."""
        self.jobs = max(1, opts["jobs"])
        warning = selectors.sandbox_warning()
        if warning:
            self.stderr.write(self.style.WARNING(warning))
        started = time.monotonic()
        if not opts["in_process"] and not settings.CELERY_TASK_ALWAYS_EAGER:
            try:
                sent = batches.enqueue(batch, retry_failed=not created)
            except Exception as exc:  # noqa: BLE001 - broker down: say so, then do the work here
                self.stderr.write(self.style.WARNING(f"Could not reach the broker ({exc}); running the jobs in this process."))
                self._run_in_process(batch)
            else:
                if sent:
                    self.stdout.write(f"Queued {sent} job(s); waiting for a worker (progress below).")
                self._wait(batch, opts["worker_wait"])
        else:
            batches.reopen_unfinished_items(batch, retry_failed=not created)
            self._run_in_process(batch)
        batch.refresh_from_db()
        return time.monotonic() - started

    def _progress_line(self, batch: Batch) -> str:
        width = 30
        filled = round(width * batch.progress)
        extra = batch.progress_text
        return (f"[{'#' * filled}{'.' * (width - filled)}] {batch.done_items + batch.failed_items}/{batch.total_items} "
                f"{batch.noun}" + (f" · {extra}" if extra else "")
                + (f" · {batch.failed_items} failed" if batch.failed_items else ""))

    def _show(self, batch: Batch, last: list[str]) -> None:
        line = self._progress_line(batch)
        if line != last[0]:
            if sys.stdout.isatty():
                self.stdout.write("\r" + line, ending="")
                self.stdout.flush()
            else:
                self.stdout.write(line)
            last[0] = line

    def _wait(self, batch: Batch, worker_wait: float) -> None:
        last = [""]
        started = checked = time.monotonic()
        while True:
            batch.refresh_from_db()
            self._show(batch, last)
            if batch.finished:
                break
            if time.monotonic() - checked > 5:
                checked = time.monotonic()
                if batches.requeue_lost_items(batch):  # items of dead workers or expired leases go back to work
                    self.stdout.write("Re-queued work that a lost worker left behind.")
            touched = batch.items.exclude(status__in=[BatchItem.Status.QUEUED, BatchItem.Status.RETRY]).exists()
            if not touched and time.monotonic() - started > worker_wait:
                self.stdout.write("")
                self.stdout.write(self.style.WARNING(
                    f"No Celery worker claimed a job within {worker_wait:g}s; running the jobs in this process "
                    f"({self.jobs} core(s)). (Start one with `make worker` to run jobs in the background.)"))
                self._run_in_process(batch)
                started = time.monotonic()
                continue
            time.sleep(0.5)
        if sys.stdout.isatty():
            self.stdout.write("")

    def _run_in_process(self, batch: Batch) -> None:
        last = [""]
        worker = f"cli:{batches.worker_identity()}"
        pending = batches.pending_item_ids(batch)
        if self.jobs > 1 and len(pending) > 1:
            # Same job bodies, on every core: spawned helper processes (no inherited connections).
            from django.db import connection, connections

            database_name = str(connection.settings_dict["NAME"])
            connections.close_all()
            with ProcessPoolExecutor(max_workers=min(self.jobs, len(pending)), mp_context=get_context("spawn"),
                                     initializer=local_pool.init, initargs=(database_name,)) as pool:
                for future in as_completed([pool.submit(local_pool.run_item, item_id) for item_id in pending]):
                    future.result()
                    batch.refresh_from_db()
                    self._show(batch, last)
        else:
            for item_id in pending:
                batches.run_item(item_id, worker=worker)
                batch.refresh_from_db()
                self._show(batch, last)
        if sys.stdout.isatty():
            self.stdout.write("")
        # Items other workers still hold: wait for them; take over what they leave behind.
        while True:
            batch.refresh_from_db()
            if batch.finished:
                return
            batches.reopen_unfinished_items(batch)
            for item_id in batches.pending_item_ids(batch):
                batches.run_item(item_id, worker=worker)
            time.sleep(0.5)
