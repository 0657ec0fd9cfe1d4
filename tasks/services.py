"""Writes for the tasks app: task-making and rollout batches, persisting tasks and runs."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gc
import os
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from dataclasses import field as _field
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from environments import batches
from environments import services as env_services
from environments.models import Batch, BatchItem, Domain
from environments.runtime.executor import SandboxPool
from environments.runtime.statekit import copy_state
from tasks.audit import audit
from tasks.exporters import HashingWriter, OpenAIWriter, TasksWriter, tools_fragment
from tasks.instantiation import COMPLEXITY, GateSettings, Instantiator, TaskDraft, domain_bundle
from tasks.judge import LLMJudge
from tasks.rollout.agents import AGENTS
from tasks.rollout.episode import EpisodeResult, run_episode
from tasks.spec import TaskSpec, build_task_spec

from . import selectors
from .models import Export, Run, RunStep, Task

# Exports (item 8)


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


def start_task_batch(*, domains: list[Domain], per_domain: int, seed: int, complexity: str = "mix",
                     backend: str = "procedural", scenarios: str = "procedural") -> tuple[Batch, bool]:
    stages = llm_task_stages(backend, scenarios)
    if per_domain < 1 or per_domain > SEEDS_PER_BATCH_SEED:
        raise ValueError(f"--per-domain must be between 1 and {SEEDS_PER_BATCH_SEED}")
    if complexity != "mix" and complexity not in COMPLEXITY:
        raise ValueError(f"--complexity must be mix or one of {', '.join(COMPLEXITY)}")
    if not domains:
        raise ValueError("no domain to make tasks from (synthesize some first)")
    params = {"domains": sorted(d.slug for d in domains), "per_domain": per_domain, "seed": seed, "complexity": complexity}
    levels = list(COMPLEXITY)
    if stages:  # LLM stages: their own batch, and task seeds of their own (one task per domain and seed)
        params["llm_stages"] = stages
    offset = LLM_SEED_OFFSETS.get(",".join(stages), 0)

    def items() -> list[BatchItem]:
        return [BatchItem(item_key=f"{d.pk}:{i}", seed=offset + seed * SEEDS_PER_BATCH_SEED + i,
                          payload={"domain_id": d.pk, "complexity": levels[i % 3] if complexity == "mix" else complexity,
                                   **({"llm_stages": stages} if stages else {})})
                for d in domains for i in range(per_domain)]

    return batches.get_or_create_batch(kind="tasks", backend="llm" if stages else "procedural", params=params,
                                       items=items)


# LLM task stages (tasks/instantiation/llm.py) -------------------------------------------------
LLM_SEED_OFFSETS = {"scenario": 10**9, "chain,state,scenario,gate": 2 * 10**9}


def llm_configured() -> bool:
    return env_services.llm_settings().configured


def llm_task_stages(backend: str, scenarios: str) -> list[str]:
    """The phase-2 stages an LLM writes for ``--backend`` / ``--scenarios`` (refused when no LLM is set up)."""
    from tasks.instantiation.llm import Stages

    if backend not in ("procedural", "llm") or scenarios not in ("procedural", "llm"):
        raise ValueError("--backend and --scenarios must be procedural or llm")
    stages = Stages.parse(backend, scenarios).names
    if stages and not llm_configured():
        raise ValueError("the llm stages need an LLM endpoint: set SCALEENV_LLM_BASE_URL and SCALEENV_LLM_MODEL")
    return stages


def _instantiator(item: BatchItem, view: Any, sandbox: Any) -> Instantiator:
    stages = item.payload.get("llm_stages") or []
    if not stages:
        return Instantiator(view, sandbox, gate_settings())
    from tasks.instantiation.llm import LLMInstantiator, Stages

    client = env_services.llm_client(batch_id=item.batch_id, item=item.item_key)
    return LLMInstantiator(view, sandbox, gate_settings(), client, Stages(**{s: True for s in stages}))


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
    draft = _instantiator(item, view, sandbox).build(item.seed, item.payload.get("complexity", "medium"))
    spec = build_task_spec(view, draft)
    llm_flags = list(((draft.evaluation or {}).get("llm") or {}).get("flags") or [])  # non-blocking: recorded reasons
    return _MadeTask(domain, draft, spec, audit(spec, sandbox, view) + llm_flags)


def _persist_made_task(item: BatchItem, made: _MadeTask) -> batches.Outcome:
    task = persist_task(made.domain, item.batch, made.draft, made.spec, made.flags)
    return task.pk, _task_counters(task)


def _tasks_progress(batch: Batch) -> str:
    c = batch.counters or {}
    return f"{c.get('tasks_verified', 0)}/{c.get('tasks_created', 0)} verified"


def _task_job(batch: Batch) -> str:
    return "scaleenv.llm_make_task" if batch.backend == "llm" else "scaleenv.make_task"


TASKS = batches.BatchKind(name="tasks", job_name="scaleenv.make_task", noun="tasks", compute=_make_task,
                          persist=_persist_made_task, existing=_existing_task, progress=_tasks_progress,
                          job_for=_task_job)


def flag_codes(flags: list[dict[str, Any]]) -> str:
    """',leak,noop_gold,' for filtering by flag with a LIKE on a short column."""
    codes = sorted({str(f.get("code", "")) for f in flags or [] if f.get("code")})
    return f",{','.join(codes)}," if codes else ""


def persist_task(domain: Domain, batch: Batch | None, draft: TaskDraft, spec: TaskSpec,
                 flags: list[dict[str, Any]]) -> Task:
    return Task.objects.create(
        domain=domain, batch=batch, seed=draft.seed, complexity=draft.complexity, intent=draft.intent, kind=draft.kind,
        instruction=draft.instruction, user_scenario=draft.user_scenario, script=draft.script,
        reason_for_call=str(((draft.user_scenario or {}).get("instructions") or {}).get("reason_for_call", ""))[:500],
        evaluation=draft.evaluation, policy_version=draft.policy_version, user_profile=draft.user_profile, s0=draft.s0, gold_chain=draft.gold_chain, gold_calls=draft.gold_calls,
        gold_outputs=draft.gold_outputs, chain_length=len(draft.gold_chain), s_gt=draft.s_gt, communicate_info=draft.communicate_info,
        subgraph=draft.subgraph, subgraph_edges=draft.subgraph_edges, h_size=draft.h_size, c_h=draft.c_h,
        distractors=draft.distractors, distractor_count=len(draft.distractors), gate=draft.gate,
        patches=draft.patches, expansion=draft.expansion, perturbations=spec.perturbations, audit_flags=flags,
        flag_codes=flag_codes(flags),
        status=Task.Status.FLAGGED if any(f["blocking"] for f in flags) else Task.Status.VERIFIED,
        content_hash=draft.content_hash)


# ---------------------------------------------------------------------------------------------
# Rollout batches: one item per (task, trial)


def start_rollout_batch(*, agent: str, which: str, trials: int, user: str = "scripted") -> tuple[Batch, bool]:
    if agent not in AGENTS and agent != "llm":
        raise ValueError(f"--agent must be llm or one of {', '.join(AGENTS)}")
    if user not in ("scripted", "llm"):
        raise ValueError("--user must be scripted or llm")
    if "llm" in (agent, user) and not llm_configured():
        raise ValueError("an llm agent or user needs an LLM endpoint: set SCALEENV_LLM_BASE_URL and SCALEENV_LLM_MODEL")
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
    if user != "scripted":
        params["user"] = user
    return batches.get_or_create_batch(
        kind="rollout", backend=agent, params=params,
        items=lambda: [BatchItem(item_key=f"{pk}:{t}", seed=t, payload={"task_id": pk, "agent": agent, "trial": t,
                                                                         "user": user})
                       for pk in ids for t in range(trials)])


def _existing_run(item: BatchItem) -> batches.Outcome | None:
    run = Run.objects.filter(batch=item.batch, task_id=item.payload["task_id"], agent=item.payload["agent"],
                             trial=int(item.payload["trial"])).only("pk", "reward").first()
    return (run.pk, _run_counters(run.reward or 0.0)) if run is not None else None


def _run_counters(reward: float) -> dict[str, Any]:
    return {"runs": 1, "reward_sum": reward, "successes": int(reward == 1.0)}


def semantic_judge() -> LLMJudge | None:
    """The configured judge of ``semantic`` texts (tasks/judge.py), one per process and endpoint so
    its memo is shared by every score; None when the rules decide alone (the default)."""
    if settings.SCALEENV_SEMANTIC_JUDGE != "llm":
        return None
    llm = settings.SCALEENV_LLM
    return _judge_for(llm["base_url"], llm["role_models"].get("semantic_judge") or llm["model"])


@functools.lru_cache(maxsize=4)
def _judge_for(base_url: str, model: str) -> LLMJudge:  # the arguments key the cache (tests change the settings)
    return LLMJudge(env_services.llm_client(stage="reward_judge"))


def _play(item: BatchItem) -> EpisodeResult:
    task = Task.objects.select_related("domain").get(pk=item.payload["task_id"])
    agent_name, trial = item.payload["agent"], int(item.payload["trial"])
    view = selectors.domain_view(task.domain)
    spec = build_task_spec(view, task)
    sandbox = sandbox_pool().get(domain_bundle(view))
    user_kind = item.payload.get("user", "scripted")
    if "llm" not in (agent_name, user_kind):
        agent = AGENTS[agent_name](spec, random.Random(f"{task.pk}:{agent_name}:{trial}"))
        return run_episode(spec, agent, sandbox, seed=trial, judge=semantic_judge())
    from tasks.rollout.llm import LLMAgent, LLMUser

    client = env_services.llm_client(batch_id=item.batch_id, task=task.pk, trial=trial).with_sample(trial)
    agent = LLMAgent(spec, client) if agent_name == "llm" else AGENTS[agent_name](
        spec, random.Random(f"{task.pk}:{agent_name}:{trial}"))
    user = LLMUser(spec, client) if user_kind == "llm" else None
    episode = run_episode(spec, agent, sandbox, seed=trial, user=user, judge=semantic_judge())
    episode.breakdown["models"] = {"agent": getattr(agent, "model", ""), "user": getattr(user, "model", "")}
    return episode


def _persist_run(item: BatchItem, episode: EpisodeResult) -> batches.Outcome:
    models = episode.breakdown.get("models") or {}
    run = persist_episode(episode, task_id=item.payload["task_id"], agent=item.payload["agent"],
                          trial=int(item.payload["trial"]), batch=item.batch, user=item.payload.get("user", "scripted"),
                          agent_model=models.get("agent", ""))
    return run.pk, _run_counters(episode.reward)


def persist_episode(episode: EpisodeResult, *, task_id: int, agent: str, trial: int, batch: Batch | None,
                    user: str = "scripted", agent_model: str = "") -> Run:
    """Store an episode: the run and its steps (call inside a transaction)."""
    run = Run.objects.create(
        batch=batch, task_id=task_id, agent=agent, agent_model=agent_model[:120], user=user[:64], trial=trial, seed=trial, messages=episode.messages,
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


def _rollout_job(batch: Batch) -> str:
    uses_llm = batch.backend == "llm" or (batch.params or {}).get("user") == "llm"
    return "scaleenv.llm_rollout" if uses_llm else "scaleenv.rollout"


ROLLOUT = batches.BatchKind(name="rollout", job_name="scaleenv.rollout", noun="episodes", compute=_play,
                            persist=_persist_run, existing=_existing_run, progress=_rollout_progress,
                            job_for=_rollout_job)


def replay_run(run: Run) -> dict[str, Any]:
    """Replay a run's executed tool calls on its task's s0; the final hash must be the run's."""
    view = selectors.domain_view(run.task.domain)
    calls = [{"tool": tool, "args": arguments} for tool, arguments in run.step_rows.filter(
        kind=RunStep.Kind.TOOL_CALL, executed=True).order_by("index").values_list("tool", "arguments")]
    sandbox = sandbox_pool().get(domain_bundle(view))
    result = sandbox.run_sequence(calls, state=copy_state(run.task.s0), stop_on_failure=False, diffs=False, values=False)
    return {"calls": len(calls), "final_hash": result["state_hash"], "matches": result["state_hash"] == run.final_hash}


# ---------------------------------------------------------------------------------------------
# Exports (item 8): one batch with one item per export; the job streams the file (docs/exports.md)

EXPORT_PAGE_TASKS = 500  # tasks read per query (bounds memory: ~25 KB of JSON text each)
EXPORT_PAGE_RUNS = 200
EXPORT_PROGRESS_SECONDS = 1.0  # how often the row's written/size (and the item's lease) are refreshed
_export_listener: contextvars.ContextVar[Callable[[int, int], None] | None] = contextvars.ContextVar(
    "export_listener", default=None)


@contextlib.contextmanager
def export_progress(listener: Callable[[int, int], None]) -> Iterator[None]:
    """Call ``listener(written, total)`` as exports run in this context (the command's progress)."""
    token = _export_listener.set(listener)
    try:
        yield
    finally:
        _export_listener.reset(token)


@functools.lru_cache(maxsize=1)
def app_version() -> str:
    """The package version, with the commit when running from a git checkout (recorded on exports)."""
    try:
        version = metadata.version("scaleenv")
    except metadata.PackageNotFoundError:
        version = "0"
    try:
        commit = subprocess.run(["git", "-C", str(settings.BASE_DIR), "rev-parse", "--short=12", "HEAD"],
                                capture_output=True, text=True, timeout=2, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+g{commit}" if commit else version


def start_export(*, requester: Any, format: str, filters: dict[str, Any], all_statuses: bool = False,
                 enqueue: bool = True) -> Export:
    """Record an export and its batch, and enqueue its job after commit. ``requester`` None is the
    command line (a shell on the server is trusted like an Admin).

    Raises PermissionDenied (not a Researcher or Admin; every status asked by a non-Admin) and
    ValueError (unknown format, bad filters)."""
    if requester is not None:
        if not (requester.has_perm("tasks.export_dataset") and requester.has_perm("tasks.add_export")):
            raise PermissionDenied("exporting needs the Researcher or Admin role")
        if all_statuses and not selectors.is_admin(requester):
            raise PermissionDenied("only an Admin may export tasks that are not approved")
    if format not in Export.Format.values:
        raise ValueError(f"format must be one of {', '.join(Export.Format.values)}")
    filters = {k: v for k, v in filters.items() if v not in (None, "", [])}
    selectors.export_tasks(filters, only_approved=not all_statuses)  # validates the filters now, not in the job
    with transaction.atomic():
        export = Export.objects.create(requester=requester, format=format, filters=filters,
                                       only_approved=not all_statuses, app_version=app_version())
        export.batch, _ = batches.get_or_create_batch(
            kind="export", backend=format, params={"export": export.pk},
            items=lambda: [BatchItem(item_key=f"export:{export.pk}", seed=0, payload={"export": export.pk})])
        export.save(update_fields=["batch"])
    if enqueue:
        try:
            with transaction.atomic():
                batches.enqueue(export.batch)
        except Exception as exc:  # noqa: BLE001 - the broker is down: say so on the row, keep the export
            export.error = (f"Could not send the job to the broker ({type(exc).__name__}: {exc}). Check "
                            f"CELERY_BROKER_URL, then send it again from batch #{export.batch_id}.")[:4000]
            Export.objects.filter(pk=export.pk).update(error=export.error)
    return export


def run_export_here(export: Export) -> Export:
    """Run an export's item in this process through the batch lifecycle (the command line)."""
    item = BatchItem.objects.get(batch_id=export.batch_id)
    batches.run_item(item.pk, worker=f"cli:{batches.worker_identity()}")
    export.refresh_from_db()
    return export


@dataclass
class ExportResult:
    lines: int
    bytes: int
    sha256: str
    file_name: str
    skipped: int = 0  # runs with no assistant turn (OpenAI format)


class _Progress:
    """Refreshes the row's counts (and the item's lease, so a long export is not taken over) at most
    once a second, and tells the command's listener."""

    def __init__(self, export_id: int, item_id: int | None, total: int) -> None:
        self.export_id, self.item_id, self.total = export_id, item_id, total
        self.last = time.monotonic()

    def tick(self, out: HashingWriter, force: bool = False) -> None:
        if not force and time.monotonic() - self.last < EXPORT_PROGRESS_SECONDS:
            return
        self.last = time.monotonic()
        Export.objects.filter(pk=self.export_id).update(written=out.lines, size_bytes=out.bytes)
        if self.item_id is not None:
            BatchItem.objects.filter(pk=self.item_id, status=BatchItem.Status.RUNNING).update(
                lease_expires_at=timezone.now() + timedelta(seconds=settings.SCALEENV_ITEM_LEASE_SECONDS))
        listener = _export_listener.get()
        if listener is not None:
            listener(out.lines, self.total)


@contextlib.contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """An export allocates millions of short-lived dicts and tuples and makes no reference cycles:
    the cycle collector would only walk them (reference counting frees them either way)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def write_export(export_id: int, item_id: int | None = None) -> ExportResult:
    """Write an export's file (the job's work): stream the rows to a partial file, hashing and
    counting on the way, then move it into place. A failure is recorded on the row and re-raised
    (the batch item records it too); a re-run starts the file again."""
    export = Export.objects.get(pk=export_id)
    Export.objects.filter(pk=export_id).update(status=Export.Status.RUNNING, started_at=timezone.now(),
                                               finished_at=None, error="", written=0, size_bytes=0)
    name = f"export-{export.pk}-{export.format}.jsonl"
    directory = selectors.export_dir()
    partials: list[Path] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tasks = selectors.export_tasks(export.filters, export.only_approved)
        with _cycle_collector_paused():
            if export.format == Export.Format.TASKS_JSONL:
                result = _write_tasks(export, item_id, tasks, directory, name, partials)
            else:
                result = _write_openai(export, item_id, tasks, directory, name, partials)
        for partial in partials:
            os.replace(partial, partial.with_suffix(""))  # drop ".partial": the file is complete
    except Exception as exc:
        for partial in partials:
            partial.unlink(missing_ok=True)
        Export.objects.filter(pk=export_id).update(status=Export.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000],
                                                   finished_at=timezone.now())
        raise
    return result


def _write_tasks(export: Export, item_id: int | None, tasks: Any, directory: Path, name: str,
                 partials: list[Path]) -> ExportResult:
    ids = selectors.export_ids(tasks)
    Export.objects.filter(pk=export.pk).update(total=len(ids))
    progress = _Progress(export.pk, item_id, len(ids))
    partials.append(directory / f"{name}.partial")
    with open(partials[0], "wb", buffering=0) as file, HashingWriter(file) as out:  # the writer batches itself
        writer = TasksWriter(out, selectors.ExportDomains())
        for page in selectors.export_task_pages(tasks, ids, EXPORT_PAGE_TASKS):
            for task in page:
                writer.write(task, task["events"])
            progress.tick(out)
    progress.tick(out, force=True)
    return ExportResult(lines=out.lines, bytes=out.bytes, sha256=out.sha256, file_name=name)


def _write_openai(export: Export, item_id: int | None, tasks: Any, directory: Path, name: str,
                  partials: list[Path]) -> ExportResult:
    runs = selectors.export_runs(tasks)
    ids = selectors.export_ids(runs)
    Export.objects.filter(pk=export.pk).update(total=len(ids))
    progress = _Progress(export.pk, item_id, len(ids))
    partials += [directory / f"{name}.partial", directory / f"{selectors.metadata_name(name)}.partial"]
    domains = selectors.ExportDomains()
    tools: dict[int, Any] = {}
    with (open(partials[0], "wb", buffering=0) as file, open(partials[1], "wb", buffering=0) as sidecar,
          HashingWriter(file) as out, HashingWriter(sidecar) as meta):
        writer = OpenAIWriter(out, meta)
        for page in selectors.export_run_pages(runs, ids, EXPORT_PAGE_RUNS):
            for run in page:
                domain_id = run["domain_id"]
                if domain_id not in tools:
                    tools[domain_id] = tools_fragment(domains[domain_id].tools)
                writer.write(run, tools[domain_id])
            progress.tick(out)
    progress.tick(out, force=True)
    return ExportResult(lines=out.lines, bytes=out.bytes, sha256=out.sha256, file_name=name, skipped=writer.skipped)


def _compute_export(item: BatchItem) -> ExportResult:
    return write_export(int(item.payload["export"]), item_id=item.pk)


def _persist_export(item: BatchItem, result: ExportResult) -> batches.Outcome:
    export_id = int(item.payload["export"])
    Export.objects.filter(pk=export_id).update(
        status=Export.Status.DONE, written=result.lines, size_bytes=result.bytes, sha256=result.sha256,
        file_name=result.file_name, finished_at=timezone.now(), error="")
    return export_id, {"exported": result.lines, "bytes": result.bytes, "skipped": result.skipped}


def _existing_export(item: BatchItem) -> batches.Outcome | None:
    export = Export.objects.filter(pk=int(item.payload["export"]), status=Export.Status.DONE).only(
        "pk", "written", "size_bytes", "file_name").first()
    if export is None or selectors.export_file(export) is None:
        return None
    return export.pk, {"exported": export.written, "bytes": export.size_bytes, "skipped": 0}


def _export_progress_text(batch: Batch) -> str:
    c = batch.counters or {}
    return f"{c['exported']} lines, {c.get('bytes', 0) / 1e6:.1f} MB" if "exported" in c else ""


EXPORT = batches.BatchKind(name="export", job_name="scaleenv.export", noun="exports", compute=_compute_export,
                           persist=_persist_export, existing=_existing_export, progress=_export_progress_text)


# ---------------------------------------------------------------------------------------------
# Batches started from the browser (issue 9, item 6). The request creates or resumes the batch and
# sends its jobs after the transaction commits; Celery workers do the work, never the request.


BROKER_ERROR = "Could not send the jobs to the broker"


@dataclass
class Launched:
    batch: Batch
    created: bool
    sent: int = 0
    error: str = ""
    notes: list[str] = _field(default_factory=list)


def launch_batch(start: Callable[[], tuple[Batch, bool]]) -> Launched:
    """Create (or resume: same kind, backend and parameters) a batch with ``start`` and send one
    job per claimable item once it is committed. A resumed batch retries its failed items, as the
    commands do. A broker that cannot be reached is recorded on the batch (``error``), so the page
    says so and a "Send the jobs again" button can retry; the batch itself is kept."""
    with transaction.atomic():
        batch, created = start()  # ValueError (bad parameters) rolls back and reaches the form
    try:
        with transaction.atomic():
            sent = batches.enqueue(batch, retry_failed=not created)
    except Exception as exc:  # noqa: BLE001 - the broker is down or misconfigured: say so on the row
        message = f"{BROKER_ERROR} ({type(exc).__name__}: {exc}). Check CELERY_BROKER_URL, then send them again."
        Batch.objects.filter(pk=batch.pk).update(error=message[:4000])
        batch.refresh_from_db()
        return Launched(batch, created, 0, message)
    if batch.error.startswith(BROKER_ERROR):
        Batch.objects.filter(pk=batch.pk).update(error="")
    batch.refresh_from_db()
    return Launched(batch, created, sent)


def launch_synthesis_batch(*, backend: str, domains: int, seed: int, fault_rate: float = 0.0, domain_name: str = "",
                           description: str = "") -> Launched:
    return launch_batch(lambda: env_services.start_synthesis_batch(
        backend=backend, domains=domains, seed=seed, fault_rate=fault_rate, domain_name=domain_name,
        description=description))


def launch_task_batch(*, domains: list[Domain], per_domain: int, seed: int, complexity: str = "mix",
                      backend: str = "procedural", scenarios: str = "procedural") -> Launched:
    return launch_batch(lambda: start_task_batch(domains=domains, per_domain=per_domain, seed=seed,
                                                 complexity=complexity, backend=backend, scenarios=scenarios))


def launch_rollout_batches(*, agents: list[str], which: str, trials: int, user: str = "scripted") -> list[Launched]:
    """One rollout batch per agent (each its own row, so each has its own figures)."""
    return [launch_batch(lambda agent=agent: start_rollout_batch(agent=agent, which=which, trials=trials, user=user))
            for agent in agents]


def resume_batch(batch: Batch) -> Launched:
    """Send the jobs of a batch again: items a lost worker left behind (dead process, expired
    lease), failed items, and items whose jobs never reached the broker. Items still held under a
    live lease are left alone; a duplicate job finds its item claimed and does nothing."""
    return launch_batch(lambda: (batch, False))
