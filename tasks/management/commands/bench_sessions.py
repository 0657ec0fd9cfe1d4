"""python manage.py bench_sessions [--sessions 64] [--servers gunicorn,runserver] [--workers N] [--threads 2]
[--think-ms 0] [--episodes 6] [--accounts 8] [--in-place] [--json]"""

from __future__ import annotations

import json
import os
import time
from contextlib import nullcontext
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from tasks import bench, loadbench


class Command(BaseCommand):
    help = ("Start a real server (gunicorn, then Django's threaded dev server) on a scratch copy of the configured "
            "database engine, play N oracle sessions at once over HTTP, and print calls/s, latency, lost calls, "
            "contamination and replay checks.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sessions", type=int, default=64, help="sessions in flight at once")
        parser.add_argument("--servers", default="gunicorn,runserver", help="comma-separated: gunicorn, runserver")
        # Two processes of two threads served the most calls on the 2-core VM (README, "Throughput").
        parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="gunicorn processes")
        parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn process")
        parser.add_argument("--worker-class", choices=["gthread", "sync"], default="gthread",
                            help="gunicorn's worker class (sync: one request at a time a process, no keep-alive)")
        parser.add_argument("--think-ms", type=float, default=0.0,
                            help="pause before each action, as an agent thinking (0: calls back to back)")
        parser.add_argument("--episodes", type=int, default=6, help="episodes each session slot plays in turn")
        parser.add_argument("--accounts", type=int, default=8, help="agent accounts the sessions are spread over")
        parser.add_argument("--tasks", type=int, default=16, help="distinct verified tasks the sessions play")
        parser.add_argument("--in-place", action="store_true",
                            help="use the configured database itself instead of a scratch copy")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        servers = [s.strip() for s in opts["servers"].split(",") if s.strip()]
        if not servers or set(servers) - {"gunicorn", "runserver"}:
            raise CommandError("--servers takes gunicorn and/or runserver")
        if opts["sessions"] < 1 or opts["accounts"] < 1 or opts["tasks"] < 1:
            raise CommandError("--sessions, --accounts and --tasks must be positive")
        results = []
        with nullcontext() if opts["in_place"] else bench.scratch_database():
            self.stdout.write(f"Database {connection.settings_dict['NAME']} ({connection.vendor})")
            started = time.monotonic()
            tasks = loadbench.bench_tasks(opts["tasks"], progress=self.stdout.write)
            plays = loadbench.oracle_plays(tasks)
            tokens = loadbench.bench_tokens(opts["accounts"])
            calls = sum(1 for p in plays for a in p.actions if a.kind == "tool")
            self.stdout.write(f"  {len(plays)} tasks from {len({t.domain_id for t in tasks})} domains, "
                              f"{calls / len(plays):.1f} tool calls per episode, in-process oracle reward 1.0 on "
                              f"{sum(1 for p in plays if p.reward == 1.0)}/{len(plays)} "
                              f"({time.monotonic() - started:.1f} s)")
            for kind in servers:
                label = (f"gunicorn {opts['workers']}×{opts['threads']} {opts['worker_class']}" if kind == "gunicorn"
                         else "runserver (threaded)")
                self.stdout.write(f"{label}: {opts['sessions']} sessions at once, think {opts['think_ms']:g} ms…")
                with loadbench.running_server(kind, opts["workers"], opts["threads"], env=loadbench.SERVER_ENV,
                                              worker_class=opts["worker_class"]) as url:
                    # A warm-up round (not counted) starts each process's sandboxes, as on a running server.
                    warm = loadbench.run_load(url, tokens, plays, opts["sessions"], 1, 0.0)
                    self.stdout.write(f"  warm-up: {warm['episodes']} episodes, {warm['errors']} errors, "
                                      f"p95 {warm['p95_ms']} ms")
                    result = loadbench.run_load(url, tokens, plays, opts["sessions"], opts["episodes"],
                                                opts["think_ms"])
                result = {"server": label, "database": connection.vendor, **result}
                results.append(result)
                self.stdout.write(self.format(result))
        if opts["json"]:
            self.stdout.write(json.dumps(results))

    @staticmethod
    def format(r: dict[str, Any]) -> str:
        lines = [
            f"  {r['episodes']} episodes, {r['tool_calls']} tool calls in {r['seconds']} s: {r['calls_per_s']} tool "
            f"calls/s ({r['requests_per_s']} requests/s); "
            f"latency p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, p99 {r['p99_ms']} ms",
            f"  errors {r['errors']}, lost calls {r['lost_calls']}, sessions stored out of order "
            f"{r['reordered_sessions']}, contaminated sessions {r['contaminated_sessions']}, replay-hash mismatches "
            f"{r['replay_mismatches']}, unfinished {r['unfinished_sessions']}",
            f"  reward 1.0 in {r['rewards_one']}/{r['episodes']} sessions "
            f"(the in-process oracle: {r['expected_rewards_one']}/{r['episodes']})"]
        if r.get("server_cpu_s") is not None:
            cores = os.cpu_count() or 1
            lines.append(f"  CPU: server {r['server_cpu_s']} s ({r['server_ms_per_request']} ms a request), load generator "
                         f"{r['client_cpu_s']} s, of {round(cores * r['seconds'], 1)} core-seconds ({cores} cores)")
        lines += [f"  error: {e}" for e in r["first_errors"]]
        return "\n".join(lines)
