"""Runtime benchmark (Django-free): in-process vs sandboxed calls, pipelining, replays, start-up.

All figures come from one run on one machine, so their ratios are meaningful even where the
absolute numbers depend on the host.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import sys
import time
from dataclasses import asdict, replace
from typing import Any

from . import statekit
from .executor import EnvironmentBundle, Sandbox, SandboxConfig


def _rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else 0.0


def _inprocess_json(bundle: EnvironmentBundle, tool: str, args: dict[str, Any], n: int) -> float:
    namespace: dict[str, Any] = {}
    exec(compile(bundle.tools[tool]["code"], "<bench>", "exec"), namespace)  # noqa: S102 - our own generated code
    fn = namespace[tool]
    db = json.loads(json.dumps(bundle.state))
    ctx = statekit.ToolContext(bundle.clock, bundle.id_seed)
    request = json.dumps({"op": "call", "tool": tool, "args": args})
    started = time.perf_counter()
    for _ in range(n):
        req = json.loads(request)
        value = fn(db, ctx, **req["args"])
        json.dumps({"outcome": "success", "value": value})
    return time.perf_counter() - started


_runtime_workers: dict[str, Any] = {}


def _inprocess_runtime(bundle: EnvironmentBundle, tool: str, args: dict[str, Any], n: int) -> float:
    """The worker's own call path (tracking, diff, validation), without a process boundary."""
    key = bundle.version_hash()
    if key not in _runtime_workers:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import worker as worker_module  # the sandbox worker module, run in-process

        w = worker_module.Worker({"limits": {"cpu_seconds": 10**6}})
        w.op_load(bundle.load_request())
        _runtime_workers[key] = w
    w = _runtime_workers[key]
    request = json.dumps({"op": "call", "tool": tool, "args": args})
    encode = json.JSONEncoder(allow_nan=False).encode
    started = time.perf_counter()
    for _ in range(n):
        req = json.loads(request)
        encode(w.execute(req["tool"], req["args"]))
    return time.perf_counter() - started


def _replay_process(bundle_data: dict[str, Any], chain: list[dict[str, Any]], seconds: float,
                    config_data: dict[str, Any]) -> tuple[int, float, set[str]]:
    bundle = EnvironmentBundle(**bundle_data)
    config = SandboxConfig(**config_data)
    hashes: set[str] = set()
    with Sandbox(bundle, config) as sandbox:
        for _ in range(20):
            sandbox.run_sequence(chain, diffs=False, values=False, stop_on_failure=False)
        count = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            run = sandbox.run_sequence(chain, diffs=False, values=False, stop_on_failure=False)
            hashes.add(run["state_hash"])
            count += 1
        elapsed = time.perf_counter() - started
    return count, elapsed, hashes


def run_benchmark(config: SandboxConfig, bundle: EnvironmentBundle, read_call: tuple[str, dict[str, Any]],
                  chain: list[dict[str, Any]], calls: int = 3000, replay_seconds: float = 4.0,
                  startups: int = 10, processes: int | None = None, rounds: int = 5) -> dict[str, Any]:
    """Measure calls of ``read_call`` and replays of ``chain`` on ``bundle`` (plain data: the caller
    builds the environment). Per-call figures come from ``rounds`` interleaved rounds of ``calls``."""
    read_tool, read_args = read_call
    results: dict[str, Any] = {"tool": read_tool, "chain_length": len(chain), "cores": os.cpu_count(),
                               "rounds": rounds, "calls_per_round": calls}

    bench_config = replace(config, selftest=False)
    with Sandbox(bundle, bench_config) as sandbox:
        results["sandbox_layers"] = sandbox.layers
        results["sandbox_missing"] = sandbox.missing_layers
        for _ in range(300):
            sandbox.call(read_tool, read_args)
        # Interleaved rounds (in-process, runtime path, sandboxed sync, pipelined, in turn), so that
        # drifts in the machine's speed hit every figure of a round alike; each figure is the
        # median over rounds, and the ratios are medians of the per-round ratios.
        json_t, runtime_t, sync_t, piped_t = [], [], [], []
        for _ in range(rounds):
            json_t.append(_inprocess_json(bundle, read_tool, read_args, calls))
            runtime_t.append(_inprocess_runtime(bundle, read_tool, read_args, calls))
            started = time.perf_counter()
            for _ in range(calls):
                sandbox.call(read_tool, read_args)
            sync_t.append(time.perf_counter() - started)
            started = time.perf_counter()
            outcome = sandbox.call_pipelined([(read_tool, read_args)] * calls)
            piped_t.append(time.perf_counter() - started)
            if not all(r["outcome"] == "success" for r in outcome):
                raise RuntimeError("pipelined benchmark calls failed")
        for name, times in (("inprocess_json", json_t), ("inprocess_runtime", runtime_t), ("sandbox_sync", sync_t),
                            ("sandbox_pipelined", piped_t)):
            t = statistics.median(times)
            results[f"{name}_calls_per_s"] = _rate(calls, t)
            results[f"{name}_us_per_call"] = round(t / calls * 1e6, 2)
        results["ratio_sync_vs_inprocess_json"] = round(statistics.median(s / j for s, j in zip(sync_t, json_t)), 2)
        results["ratio_sync_vs_inprocess_runtime"] = round(statistics.median(s / r for s, r in zip(sync_t, runtime_t)), 2)
        results["ratio_pipelined_vs_inprocess_json"] = round(statistics.median(p / j for p, j in zip(piped_t, json_t)), 2)
        results["ratio_sync_vs_inprocess_json_per_round"] = [round(s / j, 2) for s, j in zip(sync_t, json_t)]
        chain_run = sandbox.run_sequence(chain, diffs=False, values=False, stop_on_failure=False)
        results["chain_outcomes"] = [r["outcome"] for r in chain_run["results"]]

    processes = processes or os.cpu_count() or 1
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        parts = pool.starmap(_replay_process, [(asdict(bundle), chain, replay_seconds, asdict(bench_config))] * processes)
    total = sum(p[0] for p in parts)
    elapsed = max(p[1] for p in parts)
    distinct = set().union(*(p[2] for p in parts))
    results["replay_processes"] = processes
    results["replays_per_s"] = _rate(total, elapsed)
    results["replay_distinct_hashes"] = len(distinct)  # 1: every replay reproduced the same final state

    startup_ms = []
    empty = EnvironmentBundle(tools={}, schema={"tables": {}}, state={})
    for _ in range(startups):
        started = time.perf_counter()
        Sandbox(empty, bench_config).close()
        startup_ms.append((time.perf_counter() - started) * 1000)
    results["worker_startup_ms_median"] = round(statistics.median(startup_ms), 1)

    return results
