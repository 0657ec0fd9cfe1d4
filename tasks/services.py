"""Writes for the tasks app: task-making and rollout batches, persisting tasks and runs."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from environments import batches
from environments import services as env_services
from environments.models import Batch, BatchItem, Domain
from environments.runtime.executor import SandboxPool
from environments.runtime.statekit import copy_state
from tasks.audit import audit
from tasks.instantiation import COMPLEXITY, GateSettings, Instantiator, TaskDraft, domain_bundle
from tasks.rollout.agents import AGENTS
from tasks.rollout.episode import EpisodeResult, run_episode
from tasks.spec import TaskSpec, build_task_spec

from . import selectors
from .models import Run, RunStep, Task

SEEDS_PER_BATCH_SEED = 1000
_pool: SandboxPool | None = None


def sandbox_pool() -> SandboxPool:
    """One small LRU of sandboxes per process, keyed by environment version."""
    global _pool
    if _pool is None:
        _pool = SandboxPool(env_services.sandbox_config(), size=settings.SCALEENV_SANDBOX_POOL_SIZE)
    return _pool


def gate_settings() -> GateSettings:
    return GateSettings(tau=settings.SCALEENV_GATE_TAU, k=settings.SCALEENV_GATE_K, floor=settings.SCALEENV_H_FLOOR)


# ---------------------------------------------------------------------------------------------
# Task-making batches: one item per (domain, seed)


def start_task_batch(*, domains: list[Domain], per_domain: int, seed: int, complexity: str = "mix") -> tuple[Batch, bool]:
    if per_domain < 1 or per_domain > SEEDS_PER_BATCH_SEED:
        raise ValueError(f"--per-domain must be between 1 and {SEEDS_PER_BATCH_SEED}")
    if complexity != "mix" and complexity not in COMPLEXITY:
        raise ValueError(f"--complexity must be mix or one of {', '.join(COMPLEXITY)}")
    if not domains:
        raise ValueError("no domain to make tasks from (synthesize some first)")
    params = {"domains": sorted(d.slug for d in domains), "per_domain": per_domain, "seed": seed, "complexity": complexity}
    levels = list(COMPLEXITY)

    def items() -> list[BatchItem]:
        return [BatchItem(item_key=f"{d.pk}:{i}", seed=seed * SEEDS_PER_BATCH_SEED + i,
                          payload={"domain_id": d.pk, "complexity": levels[i % 3] if complexity == "mix" else complexity})
                for d in domains for i in range(per_domain)]

    return batches.get_or_create_batch(kind="tasks", backend="procedural", params=params, items=items)


def _task_counters(task: Task) -> dict[str, Any]:
    verified = int(task.status == Task.Status.VERIFIED)
    counters: dict[str, Any] = {"tasks_created": 1, "tasks_verified": verified,
                                "h_size_sum": task.h_size, "chain_length_sum": task.chain_length,
                                "h_at_least_20": int(task.h_size >= 20), f"kind_{task.kind}": 1,
                                f"verified_{task.kind}": verified}
    figures = (task.evaluation or {}).get("figures") or {}
    counters["needs_found_id"] = int(bool(figures.get("needs_found_id")))
    if task.kind == Task.Kind.WRITE:
        counters["writes"] = 1
        counters["writes_own"] = int(bool(figures.get("writes_own")))
    for f in task.audit_flags:
        counters[f"flag_{f['code']}"] = counters.get(f"flag_{f['code']}", 0) + 1
    return counters


def _existing_task(item: BatchItem) -> batches.Outcome | None:
    task = Task.objects.filter(domain_id=item.payload["domain_id"], seed=item.seed).first()
    return (task.pk, _task_counters(task)) if task is not None else None


@dataclass
class _MadeTask:
    domain: Domain
    draft: TaskDraft
    spec: TaskSpec
    flags: list[dict[str, Any]]


def _make_task(item: BatchItem) -> _MadeTask:
    domain = Domain.objects.get(pk=item.payload["domain_id"])
    view = selectors.domain_view(domain)
    sandbox = sandbox_pool().get(domain_bundle(view))
    draft = Instantiator(view, sandbox, gate_settings()).build(item.seed, item.payload.get("complexity", "medium"))
    spec = build_task_spec(view, draft)
    return _MadeTask(domain, draft, spec, audit(spec, sandbox, view))


def _persist_made_task(item: BatchItem, made: _MadeTask) -> batches.Outcome:
    task = persist_task(made.domain, item.batch, made.draft, made.spec, made.flags)
    return task.pk, _task_counters(task)


def _tasks_progress(batch: Batch) -> str:
    c = batch.counters or {}
    return f"{c.get('tasks_verified', 0)}/{c.get('tasks_created', 0)} verified"


TASKS = batches.BatchKind(name="tasks", job_name="scaleenv.make_task", noun="tasks", compute=_make_task,
                          persist=_persist_made_task, existing=_existing_task, progress=_tasks_progress)


def persist_task(domain: Domain, batch: Batch | None, draft: TaskDraft, spec: TaskSpec,
                 flags: list[dict[str, Any]]) -> Task:
    return Task.objects.create(
        domain=domain, batch=batch, seed=draft.seed, complexity=draft.complexity, intent=draft.intent, kind=draft.kind,
        instruction=draft.instruction, user_scenario=draft.user_scenario, script=draft.script,
        evaluation=draft.evaluation, policy_version=draft.policy_version, user_profile=draft.user_profile, s0=draft.s0, gold_chain=draft.gold_chain, gold_calls=draft.gold_calls,
        gold_outputs=draft.gold_outputs, chain_length=len(draft.gold_chain), s_gt=draft.s_gt, communicate_info=draft.communicate_info,
        subgraph=draft.subgraph, subgraph_edges=draft.subgraph_edges, h_size=draft.h_size, c_h=draft.c_h,
        distractors=draft.distractors, distractor_count=len(draft.distractors), gate=draft.gate,
        patches=draft.patches, expansion=draft.expansion, perturbations=spec.perturbations, audit_flags=flags,
        status=Task.Status.FLAGGED if any(f["blocking"] for f in flags) else Task.Status.VERIFIED,
        content_hash=draft.content_hash)


# ---------------------------------------------------------------------------------------------
# Rollout batches: one item per (task, trial)


def start_rollout_batch(*, agent: str, which: str, trials: int) -> tuple[Batch, bool]:
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
    params = {"agent": agent, "tasks": which, "trials": trials,
              "task_ids_hash": batches.params_key("ids", "", {"ids": ids})}
    return batches.get_or_create_batch(
        kind="rollout", backend=agent, params=params,
        items=lambda: [BatchItem(item_key=f"{pk}:{t}", seed=t, payload={"task_id": pk, "agent": agent, "trial": t})
                       for pk in ids for t in range(trials)])


def _existing_run(item: BatchItem) -> batches.Outcome | None:
    run = Run.objects.filter(batch=item.batch, task_id=item.payload["task_id"], agent=item.payload["agent"],
                             trial=int(item.payload["trial"])).only("pk", "reward").first()
    return (run.pk, _run_counters(run.reward or 0.0)) if run is not None else None


def _run_counters(reward: float) -> dict[str, Any]:
    return {"runs": 1, "reward_sum": reward, "successes": int(reward == 1.0)}


def _play(item: BatchItem) -> EpisodeResult:
    task = Task.objects.select_related("domain").get(pk=item.payload["task_id"])
    agent_name, trial = item.payload["agent"], int(item.payload["trial"])
    view = selectors.domain_view(task.domain)
    spec = build_task_spec(view, task)
    sandbox = sandbox_pool().get(domain_bundle(view))
    agent = AGENTS[agent_name](spec, random.Random(f"{task.pk}:{agent_name}:{trial}"))
    return run_episode(spec, agent, sandbox, seed=trial)


def _persist_run(item: BatchItem, episode: EpisodeResult) -> batches.Outcome:
    run = persist_episode(episode, task_id=item.payload["task_id"], agent=item.payload["agent"],
                          trial=int(item.payload["trial"]), batch=item.batch)
    return run.pk, _run_counters(episode.reward)


def persist_episode(episode: EpisodeResult, *, task_id: int, agent: str, trial: int, batch: Batch | None) -> Run:
    """Store an episode: the run and its steps (call inside a transaction)."""
    run = Run.objects.create(
        batch=batch, task_id=task_id, agent=agent, trial=trial, seed=trial, messages=episode.messages,
        step_count=len(episode.steps), final_state=episode.final_state, final_hash=episode.final_hash,
        reward=episode.reward, breakdown=episode.breakdown, termination=episode.termination,
        tool_errors=episode.tool_errors, seconds=episode.seconds)
    RunStep.objects.bulk_create(
        [RunStep(run=run, index=s.index, kind=s.kind, tool=s.tool or "", arguments=s.arguments,
                 outcome=s.outcome or "", observation=s.observation or "", diff=s.diff or {}, content=s.content or "",
                 duration_ms=s.duration_ms, executed=s.executed) for s in episode.steps], batch_size=500)
    return run


def _rollout_progress(batch: Batch) -> str:
    c = batch.counters or {}
    return f"mean reward {c.get('reward_sum', 0) / c['runs']:.3f}" if c.get("runs") else ""


ROLLOUT = batches.BatchKind(name="rollout", job_name="scaleenv.rollout", noun="episodes", compute=_play,
                            persist=_persist_run, existing=_existing_run, progress=_rollout_progress)


def replay_run(run: Run) -> dict[str, Any]:
    """Replay a run's executed tool calls on its task's s0; the final hash must be the run's."""
    view = selectors.domain_view(run.task.domain)
    calls = [{"tool": tool, "args": arguments} for tool, arguments in run.step_rows.filter(
        kind=RunStep.Kind.TOOL_CALL, executed=True).order_by("index").values_list("tool", "arguments")]
    sandbox = sandbox_pool().get(domain_bundle(view))
    result = sandbox.run_sequence(calls, state=copy_state(run.task.s0), stop_on_failure=False, diffs=False, values=False)
    return {"calls": len(calls), "final_hash": result["state_hash"], "matches": result["state_hash"] == run.final_hash}
