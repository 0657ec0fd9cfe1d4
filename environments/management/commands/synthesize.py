"""python manage.py synthesize --backend procedural --domains N --seed S [--json]"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from environments import local_pool, selectors, services
from environments.models import SynthesisItem, SynthesisRun

SUMMARY_KEYS = ("domains", "tools_total", "tools_verified", "tools_failed", "tests_total", "tests_passed", "repairs",
                "edges_total", "edges_witnessed", "edges_data_flow", "edges_pre_post", "edges_shared_state")


class Command(BaseCommand):
    help = "Synthesize executable domains through Celery jobs (in-process when no worker answers)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--backend", default=settings.SCALEENV_DEFAULT_BACKEND, choices=("procedural", "llm"))
        parser.add_argument("--domains", type=int, default=5)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--fault-rate", type=float, default=0.0,
                            help="procedural only: share of tools written with an injected bug, to exercise test and repair")
        parser.add_argument("--worker-wait", type=float, default=settings.SCALEENV_WORKER_WAIT,
                            help="seconds to wait for a Celery worker to claim a job before running jobs in-process")
        parser.add_argument("--in-process", action="store_true", help="do not wait for a worker at all")
        parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                            help="processes used when the jobs run in-process (default: all cores)")
        parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")

    def handle(self, *args: Any, **opts: Any) -> None:
        self.jobs = max(1, opts["jobs"])
        try:
            run, created = services.start_synthesis_run(backend=opts["backend"], domains=opts["domains"],
                                                        seed=opts["seed"], fault_rate=opts["fault_rate"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        warning = selectors.sandbox_warning()
        if warning:
            self.stderr.write(self.style.WARNING(warning))
        verb = "Started" if created else "Resuming"
        self.stdout.write(f"{verb} synthesis run #{run.pk}: {run.total_items} domain(s), backend {run.backend}, "
                          f"seed {run.params['seed']}")
        wall_started = time.monotonic()
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
        self._summary(run, opts["json"], time.monotonic() - wall_started)

    # -- progress ---------------------------------------------------------------------------

    def _progress_line(self, run: SynthesisRun) -> str:
        c = run.counters or {}
        width = 30
        filled = round(width * run.progress)
        return (f"[{'#' * filled}{'.' * (width - filled)}] {run.done_items + run.failed_items}/{run.total_items} domains"
                f" · tools {c.get('tools_verified', 0)}/{c.get('tools_total', 0)} verified"
                f" · tests {c.get('tests_passed', 0)}/{c.get('tests_total', 0)} passed"
                f" · edges {c.get('edges_witnessed', 0)}/{c.get('edges_total', 0)} witnessed"
                + (f" · {run.failed_items} failed" if run.failed_items else ""))

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
        started = time.monotonic()
        checked = time.monotonic()
        while True:
            run.refresh_from_db()
            self._show(run, last)
            if time.monotonic() - checked > 5:
                checked = time.monotonic()
                if services.requeue_lost_items(run):  # items of dead workers or expired leases go back to work
                    self.stdout.write("Re-queued work that a lost worker left behind.")
            if run.status in (SynthesisRun.Status.DONE, SynthesisRun.Status.PARTIAL, SynthesisRun.Status.FAILED):
                break
            touched = run.items.exclude(status__in=[SynthesisItem.Status.QUEUED, SynthesisItem.Status.RETRY]).exists()
            if not touched and time.monotonic() - started > worker_wait:
                self.stdout.write("")
                self.stdout.write(self.style.WARNING(
                    f"No Celery worker claimed a job within {worker_wait:g}s; running the jobs in this process "
                    f"({self.jobs} core(s)). "
                    "(Start one with `make worker` to run jobs in the background.)"))
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
                for future in as_completed([pool.submit(local_pool.run_synthesis_item, item_id) for item_id in pending]):
                    future.result()
                    run.refresh_from_db()
                    self._show(run, last)
        else:
            for item_id in pending:
                services.run_synthesis_item(item_id, worker=worker)
                run.refresh_from_db()
                self._show(run, last)
        if sys.stdout.isatty():
            self.stdout.write("")
        # Items other workers still hold: wait for them; take over what they leave behind.
        while True:
            run.refresh_from_db()
            if run.status in (SynthesisRun.Status.DONE, SynthesisRun.Status.PARTIAL, SynthesisRun.Status.FAILED):
                return
            services.reopen_unfinished_items(run)
            for item_id in services.pending_item_ids(run):
                services.run_synthesis_item(item_id, worker=worker)
            time.sleep(0.5)

    def _summary(self, run: SynthesisRun, as_json: bool, wall_seconds: float) -> None:
        c = {k: int((run.counters or {}).get(k, 0)) for k in SUMMARY_KEYS}
        tools_share = c["tools_verified"] / c["tools_total"] if c["tools_total"] else 0.0
        tests_share = c["tests_passed"] / c["tests_total"] if c["tests_total"] else 0.0
        edges_share = c["edges_witnessed"] / c["edges_total"] if c["edges_total"] else 0.0
        seconds = run.seconds if run.seconds is not None else round(wall_seconds, 2)
        self.stdout.write(self.style.SUCCESS(f"Synthesis run #{run.pk}: {run.status}"))
        self.stdout.write(f"  domains         {c['domains']} done, {run.failed_items} failed, of {run.total_items}")
        self.stdout.write(f"  tools           {c['tools_verified']}/{c['tools_total']} verified ({tools_share:.1%}), "
                          f"{c['repairs']} repaired")
        self.stdout.write(f"  tests           {c['tests_passed']}/{c['tests_total']} passed ({tests_share:.1%})")
        self.stdout.write(f"  edges           {c['edges_total']} ({c['edges_data_flow']} data flow, {c['edges_pre_post']} "
                          f"pre/post, {c['edges_shared_state']} shared state), {edges_share:.1%} witnessed")
        self.stdout.write(f"  seconds         {seconds}")
        for item in run.items.filter(status__in=[SynthesisItem.Status.FAILED, SynthesisItem.Status.POISONED])[:10]:
            self.stdout.write(self.style.ERROR(f"  item {item.item_key} (seed {item.seed}) {item.status}: {item.error}"))
        if as_json:
            payload = {"run": run.pk, "status": run.status, **c, "domains_failed": run.failed_items,
                       "seconds": seconds, "tools_verified_share": round(tools_share, 4),
                       "edges_witnessed_share": round(edges_share, 4)}
            self.stdout.write(json.dumps(payload))
