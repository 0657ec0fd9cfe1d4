"""python manage.py bench_pages --tasks 10000 [--repeat 30] [--json]"""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from tasks import bench


class Command(BaseCommand):
    help = ("Fill a throw-away database (same engine as configured) with many tasks and runs, then print "
            "p50/p95 latency and queries of the task list, task and run pages.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tasks", type=int, default=10_000)
        parser.add_argument("--repeat", type=int, default=30, help="requests per page")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        with bench.scratch_database() as name:
            self.stdout.write(f"Scratch database {name} ({connection.vendor}); filling {opts['tasks']} tasks…")
            started = time.monotonic()
            counts = bench.fill(opts["tasks"], progress=lambda n: self.stdout.write(f"  {n} tasks"))
            self.stdout.write(f"  {counts['tasks']} tasks, {counts['runs']} runs, {counts['reviews']} verdicts in "
                              f"{time.monotonic() - started:.1f} s")
            client = bench.signed_in_client()
            results = [bench.time_page(client, url, opts["repeat"]) for url in bench.pages(client)]
        for r in results:
            self.stdout.write(f"  {r['url']:<46} {r['status']}  p50 {r['p50_ms']:>7} ms  p95 {r['p95_ms']:>7} ms  "
                              f"{r['queries']} queries")
        if opts["json"]:
            self.stdout.write(json.dumps({"vendor": connection.vendor, **counts, "pages": results}))
