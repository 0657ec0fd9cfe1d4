"""python manage.py bench_export --tasks 100000 [--format tasks_jsonl] [--keep] [--json]"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils import timezone

from tasks import bench
from tasks.loadbench import database_url
from tasks.models import Export, ReviewStatus, Task


class Command(BaseCommand):
    help = ("Fill a throw-away database (same engine as configured) with N approved tasks, export them with "
            "`manage.py export` in a fresh process, and print tasks/s and that process's peak memory.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tasks", type=int, default=100_000)
        parser.add_argument("--format", choices=Export.Format.values, default=Export.Format.TASKS_JSONL)
        parser.add_argument("--runs-per-task", type=float, default=0.1,
                            help="oracle runs copied per task (the OpenAI format exports the successful ones)")
        parser.add_argument("--keep", action="store_true", help="keep the exported file (its path is printed)")
        parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")

    def handle(self, *args: Any, **opts: Any) -> None:
        out_dir = Path(tempfile.mkdtemp(prefix="scaleenv-bench-export-", dir=settings.VAR_DIR
                                        if Path(settings.VAR_DIR).is_dir() else None))
        try:
            with bench.scratch_database() as name:
                self.stdout.write(f"Scratch database {name} ({connection.vendor}); filling {opts['tasks']} tasks…")
                started = time.monotonic()
                counts = bench.fill(opts["tasks"], runs_per_task=opts["runs_per_task"], progress=self._filled)
                approved = Task.objects.update(review_status=ReviewStatus.APPROVED, reviewed_at=timezone.now())
                self.stdout.write(f"  {counts['tasks']} tasks ({approved} approved), {counts['runs']} runs "
                                  f"in {time.monotonic() - started:.1f} s")
                self._settle()
                figures = self._export(opts["format"], database_url(), out_dir)
            figures.update(vendor=connection.vendor, tasks=counts["tasks"], format=opts["format"])
        finally:
            if not opts["keep"]:
                shutil.rmtree(out_dir, ignore_errors=True)
        rate = figures["lines"] / figures["seconds"] if figures["seconds"] else 0.0
        figures["lines_per_second"] = round(rate)
        self.stdout.write(
            f"Exported {figures['lines']} lines ({figures['bytes'] / 1e6:.0f} MB) in {figures['seconds']:.2f} s: "
            f"{rate:.0f} {'tasks' if opts['format'] == Export.Format.TASKS_JSONL else 'lines'}/s, "
            f"{figures['bytes'] / 1e6 / figures['seconds']:.0f} MB/s")
        self.stdout.write(
            f"Peak memory of the export process (a fresh `manage.py export`; its peak resident set, VmHWM, whole "
            f"process): {figures['peak_rss_mb']:.0f} MB; it was {figures['rss_before_mb']:.0f} MB resident when the "
            f"export began (Python, Django and the apps loaded), so the export added "
            f"{figures['peak_rss_mb'] - figures['rss_before_mb']:.0f} MB")
        self.stdout.write(f"Process: {figures['process_seconds']:.2f} s wall, {figures['user_seconds']:.2f} s user, "
                          f"{figures['system_seconds']:.2f} s system CPU; then `sync` took {figures['sync_seconds']:.2f} s "
                          f"to put the file on disk (the export does not fsync)")
        if opts["keep"]:
            self.stdout.write(f"File: {figures['path']}")
        if opts["json"]:
            self.stdout.write(json.dumps(figures))

    def _filled(self, made: int, every: int = 20_000) -> None:
        if made // every != getattr(self, "_shown", 0):
            self._shown = made // every
            self.stdout.write(f"  {made} tasks")

    def _settle(self) -> None:
        """Start the timing from a quiet disk: fold SQLite's write-ahead log into the database and
        let the kernel write out what the fill left in memory."""
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE tasks_task")
        connection.close()  # the export process must not wait on this one's locks
        os.sync()

    def _export(self, format: str, url: str, out_dir: Path) -> dict[str, Any]:
        env = {**os.environ, "DATABASE_URL": url, "SCALEENV_EXPORT_DIR": str(out_dir), "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "export", "--format", format, "--json",
                   "--skip-checks"]
        self.stdout.write(f"Exporting: {' '.join(command[1:])}")
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # wait4 gives this child's own CPU times (not those of every child so far). Its ru_maxrss is not
        # used: Linux keeps the peak from before exec, i.e. this (big, filled) process's size.
        _pid, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
        stdout, stderr = process.stdout.read(), process.stderr.read()  # type: ignore[union-attr]
        if os.waitstatus_to_exitcode(status) != 0:
            raise CommandError(f"the export failed:\n{stdout}\n{stderr}")
        result = json.loads(stdout.strip().splitlines()[-1])
        synced = time.monotonic()
        os.sync()
        return {"lines": result["lines"], "bytes": result["bytes"], "seconds": result["seconds"],
                "sha256": result["sha256"], "path": result["path"], "peak_rss_mb": result["peak_rss_mb"],
                "rss_before_mb": result["rss_before_mb"], "process_seconds": round(wall, 3),
                "user_seconds": round(usage.ru_utime, 3), "system_seconds": round(usage.ru_stime, 3),
                "sync_seconds": round(time.monotonic() - synced, 3)}
