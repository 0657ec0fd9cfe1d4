"""Writes for the tasks app: task-making runs, rollout runs, persisting tasks and runs."""

from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from environments import services as env_services
from environments.models import Domain, SynthesisItem, SynthesisRun
from environments.runtime.executor import SandboxError, SandboxPool
from environments.runtime.statekit import canonical_json
from tasks.audit import audit
from tasks.instantiation import (COMPLEXITY, GateSettings, InstantiationError, Instantiator, TaskDraft, domain_bundle,
                                 task_spec)
from tasks.rollout.episode import AGENTS, TaskSpec, run_episode

from . import selectors
from .models import Run, Task

logger = logging.getLogger(__name__)

SEEDS_PER_RUN_SEED = 1000
_pool: SandboxPool | None = None


def sandbox_pool() -> SandboxPool:
    """One small LRU of sandboxes per process, keyed by environment version."""
    global _pool
    if _pool is None:
        _pool = SandboxPool(env_services.sandbox_config(), size=3)
    return _pool


def gate_settings() -> GateSettings:
    return GateSettings(tau=settings.SCALEENV_GATE_TAU, k=settings.SCALEENV_GATE_K, floor=settings.SCALEENV_H_FLOOR)


def _run_key(kind: str, params: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json({"kind": kind, "params": params}).encode()).hexdigest()


def start_task_run(*, domains: list[Domain], per_domain: int, seed: int, complexity: str = "mix") -> tuple[SynthesisRun, bool]:
    if per_domain < 1 or per_domain > SEEDS_PER_RUN_SEED:
        raise ValueError(f"--per-domain must be between 1 and {SEEDS_PER_RUN_SEED}")
    if complexity != "mix" and complexity not in COMPLEXITY:
        raise ValueError(f"--complexity must be mix or one of {', '.join(COMPLEXITY)}")
    if not domains:
        raise ValueError("no domain to make tasks from (synthesize some first)")
    params = {"domains": sorted(d.slug for d in domains), "per_domain": per_domain, "seed": seed, "complexity": complexity}
    levels = list(COMPLEXITY)
    with transaction.atomic():
        run, created = SynthesisRun.objects.get_or_create(
            params_key=_run_key("tasks", params),
            defaults={"kind": "tasks", "backend": "procedural", "params": params,
                      "total_items": per_domain * len(domains)})
        if created:
            SynthesisItem.objects.bulk_create(
                SynthesisItem(run=run, item_key=f"{d.pk}:{i}", seed=seed * SEEDS_PER_RUN_SEED + i,
                              payload={"domain_id": d.pk, "complexity": levels[i % 3] if complexity == "mix" else complexity})
                for d in domains for i in range(per_domain))
    return run, created


def _counters(task: Task) -> dict[str, Any]:
    counters: dict[str, Any] = {"tasks_created": 1, "tasks_verified": int(task.status == Task.Status.VERIFIED),
                                "h_size_sum": task.h_size, "chain_length_sum": len(task.gold_chain),
                                "h_at_least_20": int(task.h_size >= 20)}
    for f in task.audit_flags:
        counters[f"flag_{f['code']}"] = counters.get(f"flag_{f['code']}", 0) + 1
    return counters


def run_task_item(item_id: int, worker: str | None = None) -> str:
    item = env_services.claim_item(item_id, worker or env_services.worker_identity())
    if item is None:
        return "skipped"
    started = time.perf_counter()
    domain = Domain.objects.get(pk=item.payload["domain_id"])
    existing = Task.objects.filter(domain=domain, seed=item.seed).first()
    if existing is not None:
        with transaction.atomic():
            env_services.finish_item(item, domain, _counters(existing), 0.0)
        return "linked"
    try:
        view = selectors.domain_view(domain)
        sandbox = sandbox_pool().get(domain_bundle(view))
        draft = Instantiator(view, sandbox, gate_settings()).build(item.seed, item.payload.get("complexity", "medium"))
        spec = task_spec(view, draft)
        flags = audit(spec, sandbox)
    except SandboxError:
        SynthesisItem.objects.filter(pk=item.pk).update(status=SynthesisItem.Status.RETRY, error="sandbox unavailable")
        raise
    except (InstantiationError, Exception) as exc:  # noqa: BLE001 - recorded on the item; the run goes on
        logger.exception("task item %s failed", item.pk)
        env_services.fail_item(item, f"{type(exc).__name__}: {exc}", time.perf_counter() - started)
        return "failed"
    try:
        with transaction.atomic():
            task = persist_task(domain, item.run, draft, spec, flags)
            env_services.finish_item(item, domain, _counters(task), time.perf_counter() - started)
    except IntegrityError:
        return "linked"
    return "done"


def persist_task(domain: Domain, run: SynthesisRun | None, draft: TaskDraft, spec: TaskSpec,
                 flags: list[dict[str, Any]]) -> Task:
    return Task.objects.create(
        domain=domain, synthesis_run=run, seed=draft.seed, complexity=draft.complexity, instruction=draft.instruction,
        user_profile=draft.user_profile, s0=draft.s0, gold_chain=draft.gold_chain, gold_calls=draft.gold_calls,
        gold_outputs=draft.gold_outputs, s_gt=draft.s_gt, communicate_info=draft.communicate_info,
        subgraph=draft.subgraph, subgraph_edges=draft.subgraph_edges, h_size=draft.h_size, c_h=draft.c_h,
        distractors=draft.distractors, distractor_count=len(draft.distractors), gate=draft.gate,
        patches=draft.patches, expansion=draft.expansion, perturbations=spec.perturbations, audit_flags=flags,
        status=Task.Status.FLAGGED if any(f["blocking"] for f in flags) else Task.Status.VERIFIED,
        content_hash=draft.content_hash)


# ---------------------------------------------------------------------------------------------
# Rollouts


def start_rollout_run(*, agent: str, which: str, trials: int) -> tuple[SynthesisRun, bool]:
    if agent not in AGENTS:
        raise ValueError(f"--agent must be one of {', '.join(AGENTS)}")
    if trials < 1:
        raise ValueError("--trials must be at least 1")
    if which not in ("verified", "all"):
        raise ValueError("--tasks must be verified or all")
    tasks = Task.objects.all() if which == "all" else Task.objects.filter(status=Task.Status.VERIFIED)
    ids = sorted(tasks.values_list("pk", flat=True))
    if not ids:
        raise ValueError("no task to run (make some with make_tasks first)")
    params = {"agent": agent, "tasks": which, "trials": trials, "task_ids_hash": _run_key("ids", {"ids": ids})}
    with transaction.atomic():
        run, created = SynthesisRun.objects.get_or_create(
            params_key=_run_key("rollout", params),
            defaults={"kind": "rollout", "backend": agent, "params": params, "total_items": len(ids) * trials})
        if created:
            SynthesisItem.objects.bulk_create(
                SynthesisItem(run=run, item_key=f"{pk}:{t}", seed=t, payload={"task_id": pk, "agent": agent, "trial": t})
                for pk in ids for t in range(trials))
    return run, created


def run_rollout_item(item_id: int, worker: str | None = None) -> str:
    item = env_services.claim_item(item_id, worker or env_services.worker_identity())
    if item is None:
        return "skipped"
    started = time.perf_counter()
    task = Task.objects.select_related("domain").get(pk=item.payload["task_id"])
    agent_name, trial = item.payload["agent"], int(item.payload["trial"])
    try:
        view = selectors.domain_view(task.domain)
        spec = selectors.task_spec_for(task, view)
        sandbox = sandbox_pool().get(domain_bundle(view))
        agent = AGENTS[agent_name](spec, random.Random(f"{task.pk}:{agent_name}:{trial}"))
        episode = run_episode(spec, agent, sandbox, seed=trial)
    except SandboxError:
        SynthesisItem.objects.filter(pk=item.pk).update(status=SynthesisItem.Status.RETRY, error="sandbox unavailable")
        raise
    except Exception as exc:  # noqa: BLE001 - recorded on the item
        logger.exception("rollout item %s failed", item.pk)
        env_services.fail_item(item, f"{type(exc).__name__}: {exc}", time.perf_counter() - started)
        return "failed"
    with transaction.atomic():
        Run.objects.update_or_create(
            batch=item.run, task=task, agent=agent_name, trial=trial,
            defaults={"seed": trial, "messages": episode.messages, "steps": [asdict(s) for s in episode.steps],
                      "final_state": episode.final_state, "final_hash": episode.final_hash, "reward": episode.reward,
                      "breakdown": episode.breakdown, "termination": episode.termination,
                      "tool_errors": episode.tool_errors, "seconds": episode.seconds})
        env_services.finish_item(item, task.domain, {"runs": 1, "reward_sum": episode.reward,
                                                     "successes": int(episode.reward == 1.0)},
                                 time.perf_counter() - started)
    return "done"


def replay_run(run: Run) -> dict[str, Any]:
    """Replay a run's executed tool calls on its task's s0; the final hash must be the run's."""
    view = selectors.domain_view(run.task.domain)
    calls = [{"tool": s["tool"], "args": s["arguments"]} for s in run.steps
             if s.get("kind") == "tool_call" and s.get("executed", True)]
    sandbox = sandbox_pool().get(domain_bundle(view))
    from environments.runtime.statekit import copy_state

    result = sandbox.run_sequence(calls, state=copy_state(run.task.s0), stop_on_failure=False, diffs=False, values=False)
    return {"calls": len(calls), "final_hash": result["state_hash"], "matches": result["state_hash"] == run.final_hash}
