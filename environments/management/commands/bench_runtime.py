"""python manage.py bench_runtime [--json]"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from environments import services
from environments.runtime.bench import run_benchmark
from environments.synthesis.samples import bench_environment


class Command(BaseCommand):
    help = "Measure in-process vs sandboxed tool calls, pipelining, ten-step replays on all cores, worker start-up."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--calls", type=int, default=3000)
        parser.add_argument("--replay-seconds", type=float, default=4.0)
        parser.add_argument("--processes", type=int, default=None, help="replay processes (default: all cores)")
        parser.add_argument("--rounds", type=int, default=5, help="per-call figures are the best of this many rounds")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        bundle, read_call, chain = bench_environment(seed=0)
        r = run_benchmark(services.sandbox_config(), bundle, read_call, chain, calls=opts["calls"],
                          replay_seconds=opts["replay_seconds"],
                          processes=opts["processes"], rounds=opts["rounds"])
        rows = [
            ("in-process call, JSON in/out", f"{r['inprocess_json_calls_per_s']:>10,.0f} calls/s  ({r['inprocess_json_us_per_call']} µs)"),
            ("in-process, runtime call path", f"{r['inprocess_runtime_calls_per_s']:>10,.0f} calls/s  ({r['inprocess_runtime_us_per_call']} µs)"),
            ("sandboxed, synchronous", f"{r['sandbox_sync_calls_per_s']:>10,.0f} calls/s  ({r['sandbox_sync_us_per_call']} µs)"),
            ("sandboxed, pipelined", f"{r['sandbox_pipelined_calls_per_s']:>10,.0f} calls/s  ({r['sandbox_pipelined_us_per_call']} µs)"),
            (f"{r['chain_length']}-step replays + reset + hash", f"{r['replays_per_s']:>10,.0f} /s on {r['replay_processes']} processes"
             f" ({r['replay_distinct_hashes']} distinct final hash)"),
            ("worker start-up (median)", f"{r['worker_startup_ms_median']:>10} ms"),
            ("sync / in-process JSON", f"{r['ratio_sync_vs_inprocess_json']:>10}x"),
            ("sync / in-process runtime path", f"{r['ratio_sync_vs_inprocess_runtime']:>10}x"),
        ]
        self.stdout.write(f"Sandbox layers: {', '.join(r['sandbox_layers']) or 'none'}"
                          + (f" (missing: {'; '.join(r['sandbox_missing'])})" if r["sandbox_missing"] else ""))
        for label, value in rows:
            self.stdout.write(f"  {label:<34} {value}")
        if opts["json"]:
            self.stdout.write(json.dumps(r, sort_keys=True))
