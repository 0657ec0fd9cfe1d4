"""Reads for the tasks app: domain views for the engine, task specs, pass^k."""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from typing import Any

from environments.models import Domain, Tool, ToolTest
from tasks.instantiation import DomainView, EdgeView, ToolView, policy_version
from tasks.rollout.episode import pass_hat_k

from .models import Run, Task


_VIEWS: OrderedDict[tuple[int, str], DomainView] = OrderedDict()
_VIEWS_LOCK = threading.Lock()
VIEW_CACHE_SIZE = 16


def domain_view(domain: Domain) -> DomainView:
    """The engine's view of a stored domain, cached per process: a domain's tools, tests and edges
    never change after synthesis (the key includes the spec hash, so a re-synthesized domain with
    the same id is read again)."""
    key = (domain.pk, domain.spec_hash)
    with _VIEWS_LOCK:
        if key in _VIEWS:
            _VIEWS.move_to_end(key)
            return _VIEWS[key]
    view = _load_domain_view(domain)
    with _VIEWS_LOCK:
        _VIEWS[key] = view
        while len(_VIEWS) > VIEW_CACHE_SIZE:
            _VIEWS.popitem(last=False)
    return view


def _load_domain_view(domain: Domain) -> DomainView:
    """The engine's view of a stored domain: verified tools, their first passing positive case, edges."""
    tools = list(domain.tools.filter(status=Tool.Status.VERIFIED))
    positives: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for test in ToolTest.objects.filter(tool__in=tools, kind="positive", outcome=ToolTest.Outcome.SUCCESS).order_by("id"):
        positives.setdefault(test.tool_id, (test.instance_patch, test.call_args))
    views = {t.name: ToolView(name=t.name, template=t.template, kind=t.kind, parameters=t.parameters,
                              output_fields=t.output_fields, contract=t.contract, reads=t.reads, writes=t.writes,
                              code=t.code, raises=sorted({r["type"] for r in t.raises} | {"ValueError", "KeyError"}),
                              positive=positives.get(t.pk), description=t.description) for t in tools}
    edges = [EdgeView(d["src__name"], d["dst__name"], d["kinds"], d["evidence"], d["witnessed"])
             for d in domain.dependencies.values("src__name", "dst__name", "kinds", "evidence", "witnessed")]
    schema = {"tables": {}}
    tables = {}
    for t in domain.tables.all():
        schema["tables"][t.name] = {"pk": t.pk_column, "columns": {
            c["name"]: {k: v for k, v in c.items() if k in ("type", "nullable", "fk", "values", "policy") and v is not None}
            for c in t.columns}}
        tables[t.name] = {"label": t.label, "pk": t.pk_column, "role": t.role, "machine": t.machine}
    fixture, policy, description = Domain.objects.filter(pk=domain.pk).values_list(
        "fixture", "policy", "description").get()
    return DomainView(slug=domain.slug, name=domain.name, sector=domain.sector, schema=schema, fixture=fixture,
                      clock=domain.clock, id_seed=domain.id_seed, tools=views, edges=edges, tables=tables,
                      policy=policy, policy_version=policy_version(policy), description=description)


def pass_hat(runs: list[Run], k: int) -> float:
    """Mean over tasks of pass^k = C(c, k) / C(n, k) (τ-bench)."""
    by_task: dict[int, list[float]] = defaultdict(list)
    for r in runs:
        by_task[r.task_id].append(r.reward or 0.0)
    if not by_task:
        return 0.0
    return sum(pass_hat_k(sum(1 for x in v if x == 1.0), len(v), k) for v in by_task.values()) / len(by_task)


# What a list of tasks shows; never the states, chains or expansion records.
TASK_LIST_FIELDS = ("id", "domain__name", "domain__slug", "seed", "complexity", "kind", "intent", "status", "h_size",
                    "chain_length", "user_scenario", "audit_flags", "created_at")


def task_list(status: str | None = None, domain_slug: str | None = None):  # -> QuerySet[Task]
    tasks = Task.objects.select_related("domain").only(*TASK_LIST_FIELDS).order_by("domain_id", "seed")
    if status in (Task.Status.VERIFIED, Task.Status.FLAGGED):
        tasks = tasks.filter(status=status)
    if domain_slug:
        tasks = tasks.filter(domain__slug=domain_slug)
    return tasks


def task_page(task: Task) -> dict[str, Any]:
    from environments.runtime.statekit import diff_states

    runs = list(task.runs.only("id", "task_id", "agent", "trial", "reward", "termination").order_by("agent", "trial"))
    by_agent: dict[str, list[Run]] = defaultdict(list)
    for r in runs:
        by_agent[r.agent].append(r)
    policies = {name: {c["name"]: c["policy"] for c in columns}
                for name, columns in task.domain.tables.values_list("name", "columns")}
    gold = [{"tool": s["tool"], "args": s["args"], "literal": c.get("args") if c.get("args") != s["args"] else None}
            for s, c in zip(task.gold_chain, task.gold_calls or [{}] * len(task.gold_chain))]
    policy = Domain.objects.filter(pk=task.domain_id).values_list("policy", flat=True).first() or ""
    return {"task": task, "gold_diff": diff_states(task.s0, task.s_gt), "policies": policies, "gold": gold,
            "policy": policy,
            "agents": {a: {"runs": rs, "mean": sum(r.reward or 0 for r in rs) / len(rs),
                           "pass_hat_k": pass_hat(rs, len({r.trial for r in rs}))} for a, rs in by_agent.items()}}


def run_steps(run: Run, limit: int = 500) -> list[dict[str, Any]]:
    """The first ``limit`` steps of a run, as dicts (the trajectory page)."""
    return [step.as_dict() for step in run.step_rows.order_by("index")[:limit]]
