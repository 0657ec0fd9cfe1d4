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

from environments import local_pool, selectors, services
from environments.models import SynthesisItem, SynthesisRun

FINISHED = (SynthesisRun.Status.DONE, SynthesisRun.Status.PARTIAL, SynthesisRun.Status.FAILED)


class JobRunCommand(BaseCommand):
    noun = "items"

    def add_job_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--worker-wait", type=float, default=settings.SCALEENV_WORKER_WAIT,
                            help="seconds to wait for a Celery worker to claim a job before running jobs in-process")
        parser.add_argument("--in-process", action="store_true", help="do not wait for a worker at all")
        parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                            help="processes used when the jobs run in-process (default: all cores)")
        parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")

    def progress_text(self, run: SynthesisRun) -> str:
        return ""

    def execute_run(self, run: SynthesisRun, created: bool, opts: dict[str, Any]) -> float:
        """Enqueue, wait or run in-process; returns the wall time in seconds."""
        self.jobs = max(1, opts["jobs"])
        warning = selectors.sandbox_warning()
        if warning:
            self.stderr.write(self.style.WARNING(warning))
        started = time.monotonic()
        if not opts["in_process"] and not settings.CELERY_TASK_ALWAYS_EAGER:
            try:
                sent = services.enqueue_run(run, retry_failed=not created)
            except Exception as exc:  # noqa: BLE001 - broker down: say so, then do the work here
                self.stderr.write(self.style.WARNING(f"Could not reach the broker ({exc}); running the jobs in this process."))
                self._run_in_process(run)
            else:
                if sent:
                    self.stdout.write(f"Queued {sent} job(s); waiting for a worker (progress below).")
                self._wait(run, opts["worker_wait"])
        else:
            services.reopen_unfinished_items(run, retry_failed=not created)
            self._run_in_process(run)
        run.refresh_from_db()
        return time.monotonic() - started

    def _progress_line(self, run: SynthesisRun) -> str:
        width = 30
        filled = round(width * run.progress)
        extra = self.progress_text(run)
        return (f"[{'#' * filled}{'.' * (width - filled)}] {run.done_items + run.failed_items}/{run.total_items} "
                f"{self.noun}" + (f" · {extra}" if extra else "") + (f" · {run.failed_items} failed" if run.failed_items else ""))

    def _show(self, run: SynthesisRun, last: list[str]) -> None:
        line = self._progress_line(run)
        if line != last[0]:
            if sys.stdout.isatty():
                self.stdout.write("\r" + line, ending="")
                self.stdout.flush()
            else:
                self.stdout.write(line)
            last[0] = line

    def _wait(self, run: SynthesisRun, worker_wait: float) -> None:
        last = [""]
        started = checked = time.monotonic()
        while True:
            run.refresh_from_db()
            self._show(run, last)
            if run.status in FINISHED:
                break
            if time.monotonic() - checked > 5:
                checked = time.monotonic()
                if services.requeue_lost_items(run):  # items of dead workers or expired leases go back to work
                    self.stdout.write("Re-queued work that a lost worker left behind.")
            touched = run.items.exclude(status__in=[SynthesisItem.Status.QUEUED, SynthesisItem.Status.RETRY]).exists()
            if not touched and time.monotonic() - started > worker_wait:
                self.stdout.write("")
                self.stdout.write(self.style.WARNING(
                    f"No Celery worker claimed a job within {worker_wait:g}s; running the jobs in this process "
                    f"({self.jobs} core(s)). (Start one with `make worker` to run jobs in the background.)"))
                self._run_in_process(run)
                started = time.monotonic()
                continue
            time.sleep(0.5)
        if sys.stdout.isatty():
            self.stdout.write("")

    def _run_in_process(self, run: SynthesisRun) -> None:
        last = [""]
        worker = f"cli:{services.worker_identity()}"
        pending = services.pending_item_ids(run)
        if self.jobs > 1 and len(pending) > 1:
            # Same job bodies, on every core: spawned helper processes (no inherited connections).
            from django.db import connection, connections

            database_name = str(connection.settings_dict["NAME"])
            connections.close_all()
            with ProcessPoolExecutor(max_workers=min(self.jobs, len(pending)), mp_context=get_context("spawn"),
                                     initializer=local_pool.init, initargs=(database_name,)) as pool:
                for future in as_completed([pool.submit(local_pool.run_item, item_id) for item_id in pending]):
                    future.result()
                    run.refresh_from_db()
                    self._show(run, last)
        else:
            for item_id in pending:
                services.run_item(item_id, worker=worker)
                run.refresh_from_db()
                self._show(run, last)
        if sys.stdout.isatty():
            self.stdout.write("")
        # Items other workers still hold: wait for them; take over what they leave behind.
        while True:
            run.refresh_from_db()
            if run.status in FINISHED:
                return
            services.reopen_unfinished_items(run)
            for item_id in services.pending_item_ids(run):
                services.run_item(item_id, worker=worker)
            time.sleep(0.5)
