"""Writes for the environments app: synthesis runs, claiming work, persisting domains."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from collections import Counter
from dataclasses import asdict
from datetime import timedelta
from typing import Any, Callable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from environments.runtime.executor import SandboxConfig, SandboxError
from environments.runtime.statekit import canonical_json
from environments.synthesis.interface import get_backend
from environments.synthesis.pipeline import DomainResult, synthesize_domain

from .models import Dependency, Domain, SynthesisItem, SynthesisRun, Table, Tool, ToolTest

logger = logging.getLogger(__name__)

SEEDS_PER_RUN_SEED = 1000  # domain seed = run seed * 1000 + index


def sandbox_config() -> SandboxConfig:
    return SandboxConfig.from_env(mode=settings.SCALEENV_SANDBOX, call_timeout=settings.SCALEENV_SANDBOX_CALL_TIMEOUT)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# ---------------------------------------------------------------------------------------------
# Runs


def start_synthesis_run(*, backend: str, domains: int, seed: int, fault_rate: float = 0.0) -> tuple[SynthesisRun, bool]:
    """Get or create the run for these parameters (the same command twice resumes, never duplicates)."""
    if domains < 1:
        raise ValueError("--domains must be at least 1")
    if domains > SEEDS_PER_RUN_SEED:
        raise ValueError(f"--domains must be at most {SEEDS_PER_RUN_SEED}")
    if seed < 0:
        raise ValueError("--seed must not be negative")
    get_backend(backend, fault_rate=fault_rate)  # fails early on an unknown backend or bad option
    params = {"domains": domains, "seed": seed, "fault_rate": fault_rate}
    key = hashlib.sha256(canonical_json({"kind": "synthesis", "backend": backend, "params": params}).encode()).hexdigest()
    with transaction.atomic():
        run, created = SynthesisRun.objects.get_or_create(
            params_key=key, defaults={"kind": "synthesis", "backend": backend, "params": params, "total_items": domains})
        if created:
            SynthesisItem.objects.bulk_create(
                SynthesisItem(run=run, item_key=str(i), seed=seed * SEEDS_PER_RUN_SEED + i) for i in range(domains))
    return run, created


def reopen_unfinished_items(run: SynthesisRun, retry_failed: bool = False) -> int:
    """Make items that a dead or vanished worker left behind claimable again; returns how many.

    ``retry_failed`` also reopens items that failed (not poisoned ones): re-running a command is
    the user asking for another try.
    """
    now = timezone.now()
    stale = Q(status=SynthesisItem.Status.RUNNING) & Q(lease_expires_at__lt=now)
    reopened = 0
    for item in run.items.filter(status=SynthesisItem.Status.RUNNING):
        if _owner_dead_here(item.claimed_by):
            reopened += SynthesisItem.objects.filter(pk=item.pk, status=SynthesisItem.Status.RUNNING,
                                                     claimed_by=item.claimed_by).update(status=SynthesisItem.Status.RETRY)
    reopened += run.items.filter(stale).update(status=SynthesisItem.Status.RETRY)
    if retry_failed:
        reopened += run.items.filter(status=SynthesisItem.Status.FAILED).update(status=SynthesisItem.Status.RETRY,
                                                                               attempts=0)
    if reopened and run.status in (SynthesisRun.Status.DONE, SynthesisRun.Status.PARTIAL, SynthesisRun.Status.FAILED):
        SynthesisRun.objects.filter(pk=run.pk).update(status=SynthesisRun.Status.RUNNING, finished_at=None)
    return reopened


def _owner_dead_here(claimed_by: str) -> bool:
    host, _, pid = claimed_by.rpartition(":")
    host = host.removeprefix("cli:")
    return host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pending_item_ids(run: SynthesisRun) -> list[int]:
    return list(run.items.filter(status__in=[SynthesisItem.Status.QUEUED, SynthesisItem.Status.RETRY])
                .values_list("pk", flat=True))


def requeue_lost_items(run: SynthesisRun) -> int:
    """Send jobs again for items whose worker died or whose lease expired (no duplicate messages
    for items that are still waiting in the broker)."""
    if not reopen_unfinished_items(run):
        return 0
    ids = list(run.items.filter(status=SynthesisItem.Status.RETRY).values_list("pk", flat=True))
    job = job_for(run)
    for item_id in ids:
        transaction.on_commit(lambda item_id=item_id: job.delay(item_id))
    return len(ids)


def job_for(run: SynthesisRun):  # -> a Celery task
    if run.kind == "tasks":
        from tasks import jobs as task_jobs

        return task_jobs.make_task
    if run.kind == "rollout":
        from tasks import jobs as task_jobs

        return task_jobs.rollout
    from . import jobs

    return jobs.synthesize_domain


def enqueue_run(run: SynthesisRun, retry_failed: bool = False) -> int:
    """Send one job per claimable item, after the current transaction commits."""
    reopen_unfinished_items(run, retry_failed=retry_failed)
    ids = pending_item_ids(run)
    job = job_for(run)
    for item_id in ids:
        transaction.on_commit(lambda item_id=item_id: job.delay(item_id))
    return len(ids)


# ---------------------------------------------------------------------------------------------
# Claiming and running one item


def claim_item(item_id: int, worker: str) -> SynthesisItem | None:
    """Claim an item with a conditional update; None when another delivery has it or it is done."""
    lease = timezone.now() + timedelta(seconds=settings.SCALEENV_ITEM_LEASE_SECONDS)
    with transaction.atomic():
        claimable = Q(status__in=[SynthesisItem.Status.QUEUED, SynthesisItem.Status.RETRY]) | Q(
            status=SynthesisItem.Status.RUNNING, lease_expires_at__lt=timezone.now())
        # A redelivery after its worker process died on this host (SIGKILL, OOM): take it over.
        holder = SynthesisItem.objects.filter(pk=item_id, status=SynthesisItem.Status.RUNNING).values_list(
            "claimed_by", flat=True).first()
        if holder and _owner_dead_here(holder):
            claimable |= Q(status=SynthesisItem.Status.RUNNING, claimed_by=holder)
        updated = SynthesisItem.objects.filter(claimable, pk=item_id).update(
            status=SynthesisItem.Status.RUNNING, claimed_by=worker, lease_expires_at=lease)
        if not updated:
            return None
        item = SynthesisItem.objects.select_related("run").get(pk=item_id)
        item.attempts += 1
        item.save(update_fields=["attempts"])
        if item.attempts > settings.SCALEENV_JOB_ATTEMPTS:
            item.status = SynthesisItem.Status.POISONED
            item.error = (f"gave up after {item.attempts - 1} attempts (the worker died or crashed each time); "
                          f"last error: {item.error or 'none recorded'}")
            item.save(update_fields=["status", "error"])
            _refresh_run(item.run_id)
            return None
        SynthesisRun.objects.filter(pk=item.run_id, status=SynthesisRun.Status.QUEUED).update(
            status=SynthesisRun.Status.RUNNING, started_at=timezone.now())
    return item


def run_item(item_id: int, worker: str | None = None) -> str:
    """Run one item of any kind of run (synthesis, tasks, rollout)."""
    kind = SynthesisItem.objects.filter(pk=item_id).values_list("run__kind", flat=True).first()
    if kind == "tasks":
        from tasks import services as task_services

        return task_services.run_task_item(item_id, worker=worker)
    if kind == "rollout":
        from tasks import services as task_services

        return task_services.run_rollout_item(item_id, worker=worker)
    return run_synthesis_item(item_id, worker=worker)


def run_synthesis_item(item_id: int, worker: str | None = None,
                       progress: Callable[[str, float], None] | None = None) -> str:
    """Do one item end to end. Idempotent: a second delivery finds the item claimed or done."""
    item = claim_item(item_id, worker or worker_identity())
    if item is None:
        return "skipped"
    run = item.run
    existing = Domain.objects.filter(backend=run.backend, seed=item.seed).first()
    if existing is not None:  # made by an earlier attempt or another run: link it, change nothing
        with transaction.atomic():
            _finish_item(item, existing, _domain_counters(existing), existing.seconds)
        return "linked"
    started = time.perf_counter()
    try:
        backend = get_backend(run.backend, fault_rate=float(run.params.get("fault_rate", 0.0)))
        result = synthesize_domain(item.seed, backend, sandbox_config(),
                                   repair_rounds=settings.SCALEENV_REPAIR_ROUNDS, progress=progress)
    except SandboxError:
        # Infrastructure failure: give the item back so a retry (or another worker) can take it.
        SynthesisItem.objects.filter(pk=item.pk).update(status=SynthesisItem.Status.RETRY,
                                                        error="sandbox unavailable", lease_expires_at=None)
        raise
    except Exception as exc:  # noqa: BLE001 - a content failure: recorded on the item, the run goes on
        logger.exception("synthesis of item %s failed", item.pk)
        with transaction.atomic():
            SynthesisItem.objects.filter(pk=item.pk).update(
                status=SynthesisItem.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000],
                seconds=round(time.perf_counter() - started, 3))
            _refresh_run(run.pk)
        return "failed"
    try:
        with transaction.atomic():
            domain = persist_domain(result, run)
            _finish_item(item, domain, result.counters, result.seconds)
    except IntegrityError:
        # Another delivery persisted the same domain first: link to it.
        with transaction.atomic():
            domain = Domain.objects.get(backend=run.backend, seed=item.seed)
            _finish_item(item, domain, _domain_counters(domain), domain.seconds)
        return "linked"
    return "done"


def _finish_item(item: SynthesisItem, domain: Domain | None, counters: dict[str, Any], seconds: float) -> None:
    SynthesisItem.objects.filter(pk=item.pk).update(status=SynthesisItem.Status.DONE, domain=domain,
                                                    counters=counters, seconds=seconds, error="",
                                                    lease_expires_at=None)
    _refresh_run(item.run_id)


finish_item = _finish_item


def fail_item(item: SynthesisItem, error: str, seconds: float) -> None:
    with transaction.atomic():
        SynthesisItem.objects.filter(pk=item.pk).update(status=SynthesisItem.Status.FAILED, error=error[:4000],
                                                        seconds=round(seconds, 3))
        _refresh_run(item.run_id)


def _refresh_run(run_id: int) -> None:
    """Recompute the run's progress and counters from its items (idempotent, no double counting)."""
    run = SynthesisRun.objects.select_for_update().get(pk=run_id)
    items = list(run.items.values("status", "counters", "seconds"))
    done = [i for i in items if i["status"] == SynthesisItem.Status.DONE]
    failed = [i for i in items if i["status"] in (SynthesisItem.Status.FAILED, SynthesisItem.Status.POISONED)]
    totals: dict[str, float] = {}
    for i in done:
        for key, value in (i["counters"] or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                totals[key] = totals.get(key, 0) + value
    run.done_items, run.failed_items = len(done), len(failed)
    run.counters = {k: round(v, 6) if isinstance(v, float) else v for k, v in totals.items()}
    run.metrics = {"item_seconds_total": round(sum(i["seconds"] or 0 for i in done), 3),
                   "item_seconds_max": round(max((i["seconds"] or 0 for i in done), default=0), 3)}
    if run.started_at is None:
        run.started_at = timezone.now()
        run.status = SynthesisRun.Status.RUNNING
    if run.done_items + run.failed_items >= run.total_items:
        run.status = SynthesisRun.Status.DONE if not failed else (
            SynthesisRun.Status.PARTIAL if done else SynthesisRun.Status.FAILED)
        run.finished_at = run.finished_at or timezone.now()
    run.save()


def _domain_counters(domain: Domain) -> dict[str, int]:
    tools = list(domain.tools.values_list("status", flat=True))
    tests = ToolTest.objects.filter(tool__domain=domain)
    edges = domain.dependencies.all()
    kinds = Counter(k for ks in edges.values_list("kinds", flat=True) for k in ks)
    verified = sum(1 for s in tools if s == Tool.Status.VERIFIED)
    return {
        "domains": 1, "tools_total": len(tools), "tools_verified": verified, "tools_failed": len(tools) - verified,
        "tests_total": tests.count(), "tests_passed": tests.exclude(outcome=ToolTest.Outcome.UNEXPECTED_FAILURE).count(),
        "repairs": sum(domain.tools.values_list("repair_count", flat=True)),
        "edges_total": edges.count(), "edges_witnessed": edges.filter(witnessed=True).count(),
        "edges_data_flow": kinds["data_flow"], "edges_pre_post": kinds["pre_post"],
        "edges_shared_state": kinds["shared_state"],
    }


# ---------------------------------------------------------------------------------------------
# Persisting a synthesized domain


def persist_domain(result: DomainResult, run: SynthesisRun | None) -> Domain:
    """Store a domain and everything under it. Call inside a transaction."""
    spec = result.spec
    failed = sum(1 for s in result.tool_status.values() if s["status"] != "verified")
    status = Domain.Status.VERIFIED if not failed else (
        Domain.Status.FAILED if failed == len(result.tool_status) else Domain.Status.PARTIAL)
    domain = Domain.objects.create(
        name=spec.name, slug=spec.slug, description=spec.description, keywords=spec.keywords, sector=spec.sector,
        backend=spec.backend, seed=spec.seed, spec_hash=spec.spec_hash(), status=status, synthesis_run=run,
        clock=spec.clock, id_seed=spec.id_seed, fixture=spec.fixture, notes=spec.notes, stats=result.stats,
        layout=result.layout, stages=[asdict(s) for s in result.stages], sandbox=result.sandbox, seconds=result.seconds)
    Table.objects.bulk_create(
        Table(domain=domain, name=t.name, label=t.label, pk_column=t.pk, role=t.role, position=i, machine=t.machine,
              columns=[{"name": c.name, "type": c.type, "nullable": c.nullable, "default": c.default, "fk": c.fk,
                        "policy": c.policy, "values": c.values, "description": c.description} for c in t.columns])
        for i, t in enumerate(spec.tables))
    tools = Tool.objects.bulk_create(
        Tool(domain=domain, name=t.name, description=t.description, kind=t.kind, template=t.template,
             parameters=t.parameters, returns=t.returns, output_fields=t.output_fields, preconditions=t.preconditions,
             postconditions=t.postconditions, raises=t.raises, reads=t.reads, writes=t.writes, mutates=t.mutates,
             contract=t.contract, code=t.code, status=result.tool_status[t.name]["status"],
             failure_reason=result.tool_status[t.name]["reason"], repair_count=result.tool_status[t.name]["repairs"])
        for t in spec.tools)
    by_name = {t.name: t for t in tools}
    if any(t.pk is None for t in tools):  # backends without RETURNING ids
        by_name = {t.name: t for t in domain.tools.all()}
    ToolTest.objects.bulk_create(
        (ToolTest(tool=by_name[c.tool], name=c.name[:200], kind=c.kind, instance_patch=c.patch, call_args=c.args,
                  expected=c.expected, outcome=c.outcome or ToolTest.Outcome.UNEXPECTED_FAILURE,
                  message=c.message or "not run", observed=c.observed, attempts=c.attempts) for c in result.tests),
        batch_size=500)
    Dependency.objects.bulk_create(
        (Dependency(domain=domain, src=by_name[e.src], dst=by_name[e.dst], kinds=e.kinds, evidence=e.evidence,
                    witnessed=e.witnessed, witness=e.witness, source=spec.backend) for e in result.edges),
        batch_size=1000)
    return domain
