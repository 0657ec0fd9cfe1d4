"""Reads for the tasks app: domain views for the engine, task specs, pass^k, the review queue."""

from __future__ import annotations

import hashlib
import json
import threading
from array import array
from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import django_filters
from django import forms
from django.conf import settings
from django.db import connections
from django.db.models import BinaryField, Count, Exists, OuterRef, Q, QuerySet, TextField
from django.db.models.functions import Cast, Length, Substr
from django.http import Http404
from django.utils import timezone

from environments.models import Batch, BatchItem, Domain, Table, Tool, ToolTest
from environments.roles import ADMIN, role_of
from tasks.exporters import TASK_FIELDS, TASK_JSON_FIELDS, DomainInfo
from tasks.instantiation import DomainView, EdgeView, ToolView, policy_version
from tasks.rollout.episode import pass_hat_k
from tasks.spec import openai_tools

from .models import Export, RejectionReason, Review, ReviewEvent, ReviewStatus, Run, RunStep, Task

# Exports (item 8)


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
                    "chain_length", "reason_for_call", "audit_flags", "review_status", "created_at")


def task_list_ids(status: str | None = None, domain_slug: str | None = None) -> QuerySet[Task]:
    """The listed tasks' ids in list order: a page is cut from these (a deep page skips index
    entries, not wide rows), then :func:`task_list_rows` reads its rows."""
    # By id: an index on a filtered column holds its rows in id order, so no page needs a sort.
    tasks = Task.objects.order_by("pk")
    if status in (Task.Status.VERIFIED, Task.Status.FLAGGED):
        tasks = tasks.filter(status=status)
    if domain_slug:
        tasks = tasks.filter(domain__slug=domain_slug)
    return tasks.values_list("pk", flat=True)


def task_list_rows(ids: Any) -> list[Task]:
    ids = list(ids)
    rows = {t.pk: t for t in Task.objects.filter(pk__in=ids).select_related("domain").only(*TASK_LIST_FIELDS)}
    return [rows[pk] for pk in ids if pk in rows]


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
    return {"task": task, "gold_changes": diff_rows(diff_states(task.s0, task.s_gt), policies), "gold": gold,
            "policy": policy, "s0_tables": s0_tables(task),
            "agents": {a: {"runs": rs, "mean": sum(r.reward or 0 for r in rs) / len(rs),
                           "pass_hat_k": pass_hat(rs, len({r.trial for r in rs}))} for a, rs in by_agent.items()}}


# ---------------------------------------------------------------------------------------------
# Review queue: one FilterSet for the queue page, the task list, bulk actions and exports


def _flag_choices() -> list[tuple[str, str]]:
    from .audit import FLAGS

    return [(code, code.replace("_", " ")) for code in FLAGS]


class TaskFilter(django_filters.FilterSet):
    """Filters on tasks that find the ones to look at (GET parameters; shared with the API)."""

    q = django_filters.CharFilter(method="search", label="Search", widget=forms.TextInput(attrs={
        "data-shortcut": "/", "placeholder": "intent, words or task id (/)", "type": "search"}))
    domain = django_filters.ChoiceFilter(field_name="domain__slug", label="Domain", empty_label="any domain",
                                         choices=lambda: list(Domain.objects.order_by("name").values_list("slug", "name")))
    review_status = django_filters.ChoiceFilter(choices=ReviewStatus.choices, method="by_review_status",
                                                label="Review", empty_label="any review status")
    status = django_filters.ChoiceFilter(choices=Task.Status.choices, label="Audit", empty_label="any audit result")
    flag = django_filters.ChoiceFilter(choices=_flag_choices, method="by_flag", label="Audit flag",
                                       empty_label="any flag or none")
    complexity = django_filters.ChoiceFilter(choices=Task.Complexity.choices, empty_label="any level")
    kind = django_filters.ChoiceFilter(choices=Task.Kind.choices, empty_label="any kind")
    refusal = django_filters.ChoiceFilter(choices=[("yes", "refusals only"), ("no", "no refusals")],
                                          method="by_refusal", empty_label="refusals or not", label="Refusal")
    intent = django_filters.CharFilter(field_name="intent", lookup_expr="istartswith", label="Intent")
    reviewer = django_filters.CharFilter(method="by_reviewer", label="Reviewer",
                                         help_text="tasks this user gave a verdict on or holds")
    runs = django_filters.ChoiceFilter(choices=[("oracle_failed", "oracle failed"), ("some_failed", "a run failed"),
                                                ("all_passed", "every run passed"), ("no_runs", "no run")],
                                       method="by_runs", empty_label="any runs", label="Runs")
    disagreement = django_filters.ChoiceFilter(choices=[("true", "reviewers disagree"), ("false", "no disagreement")],
                                               method="by_disagreement", empty_label="agreement: any",
                                               label="Agreement")

    class Meta:
        model = Task
        fields = ["q", "domain", "review_status", "status", "flag", "complexity", "kind", "refusal", "intent",
                  "reviewer", "runs", "disagreement"]

    def search(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        value = value.strip()
        if value.isdigit():
            return queryset.filter(pk=int(value))
        if not value:
            return queryset
        # As a subquery, the engines scan a narrow index holding both columns (task_queue_words), not
        # the wide task rows: a word that matches nothing cost 0.8 s at 100,000 tasks on SQLite.
        words = Task.objects.order_by().filter(Q(intent__icontains=value) | Q(reason_for_call__icontains=value))
        return queryset.filter(pk__in=words.values("pk"))

    def by_review_status(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        # Expired leases are swept back to pending before the queue is read (reviews.expire_leases),
        # so each status is one indexed equality.
        return queryset.filter(review_status=value)

    def by_flag(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        # ``<> ''`` lets the engines use the partial indexes of flagged tasks
        return queryset.exclude(flag_codes="").filter(flag_codes__contains=f",{value},")

    def by_refusal(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        return queryset.filter(kind=Task.Kind.REFUSAL) if value == "yes" else queryset.exclude(kind=Task.Kind.REFUSAL)

    def by_reviewer(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        value = value.strip()
        return queryset.filter(Q(reviews__reviewer__username=value) | Q(lease_holder__username=value)).distinct()

    def by_runs(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        runs = Run.objects.filter(task=OuterRef("pk")).exclude(agent="external")
        if value == "oracle_failed":
            return queryset.filter(Exists(runs.filter(agent="oracle").exclude(reward=1.0)))
        if value == "some_failed":
            return queryset.filter(Exists(runs.exclude(reward=1.0)))
        if value == "all_passed":
            return queryset.filter(Exists(runs)).exclude(Exists(runs.exclude(reward=1.0)))
        return queryset.exclude(Exists(runs))

    def by_disagreement(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        if value == "true":
            return disputed_tasks(queryset)
        return queryset.exclude(Q(pk__in=_disputed_ids()) & ~Q(review_status__in=DECIDED))


# What the queue table shows of a task; never the states, chains or expansion records.
QUEUE_FIELDS = ("id", "domain__name", "domain__slug", "seed", "complexity", "kind", "intent", "status", "h_size",
                "chain_length", "reason_for_call", "audit_flags", "review_status", "lease_holder__username",
                "lease_expires_at", "reviewed_at", "queue_id")


def filtered_tasks(params: Any) -> tuple[TaskFilter, QuerySet[Task]]:
    """The filter bound to ``params`` (a QueryDict or dict) and the tasks it selects, by id."""
    task_filter = TaskFilter(params, queryset=Task.objects.all())
    tasks = task_filter.qs if task_filter.is_valid() else Task.objects.none()
    return task_filter, tasks.order_by("pk")


def queue_ids(tasks: QuerySet[Task]) -> QuerySet[Task]:
    """The filtered tasks' ids in queue order: a page is cut from these (a deep page skips index
    entries, not joined rows), then :func:`queue_rows` reads its 50 rows."""
    return tasks.order_by("pk").values_list("pk", flat=True)


def queue_rows(ids: Any) -> list[Task]:
    """The queue table's rows for these ids, in order, each with its verdict count."""
    ids = list(ids)
    rows = {t.pk: t for t in Task.objects.filter(pk__in=ids).select_related("domain", "lease_holder").only(
        *QUEUE_FIELDS)}
    return with_verdict_counts([rows[pk] for pk in ids if pk in rows])


def with_verdict_counts(rows: Any) -> list[Task]:
    """The page's tasks, each with ``verdicts`` (how many verdicts it has), in one query."""
    rows = list(rows)
    counts = dict(Review.objects.filter(task_id__in=[t.pk for t in rows]).order_by().values("task_id").annotate(
        n=Count("pk")).values_list("task_id", "n"))
    for task in rows:
        task.verdicts = counts.get(task.pk, 0)
    return rows


def review_counts(tasks: QuerySet[Task]) -> dict[str, int]:
    """How many of ``tasks`` are in each review state (an expired lease counts as pending): one
    count per status (the review-status index covers it) and one for the live leases."""
    rows = dict(tasks.order_by().values_list("review_status").annotate(n=Count("pk")).values_list("review_status", "n"))
    counts = {status: rows.get(status, 0) for status in ReviewStatus.values}
    if counts[ReviewStatus.IN_REVIEW]:
        live = tasks.filter(review_status=ReviewStatus.IN_REVIEW, lease_expires_at__gt=timezone.now()).count()
        counts[ReviewStatus.PENDING] += counts[ReviewStatus.IN_REVIEW] - live
        counts[ReviewStatus.IN_REVIEW] = live
    counts["total"] = sum(counts[s] for s in ReviewStatus.values)
    return counts


def next_task_for(user: Any, tasks: QuerySet[Task], after: int = 0) -> int | None:
    """The next task ``user`` may review in ``tasks`` (free, not already given a verdict by them),
    after ``after`` in id order and then from the start."""
    now = timezone.now()
    free = tasks.filter(Q(review_status=ReviewStatus.PENDING) | Q(review_status=ReviewStatus.IN_REVIEW,
                                                                 lease_expires_at__lte=now) |
                        Q(review_status=ReviewStatus.IN_REVIEW, lease_holder=user)).exclude(reviews__reviewer=user)
    return (free.filter(pk__gt=after).values_list("pk", flat=True).first()
            or free.values_list("pk", flat=True).first())


def neighbours(tasks: QuerySet[Task], task_id: int) -> tuple[int | None, int | None]:
    """The previous and next task ids in ``tasks`` (id order) around ``task_id``."""
    previous = tasks.filter(pk__lt=task_id).order_by("-pk").values_list("pk", flat=True).first()
    following = tasks.filter(pk__gt=task_id).order_by("pk").values_list("pk", flat=True).first()
    return previous, following


DECIDED = (ReviewStatus.APPROVED, ReviewStatus.REJECTED, ReviewStatus.NEEDS_CHANGES)


def _disputed_ids() -> QuerySet[Review]:
    """Ids of tasks whose reviewers gave different verdicts, read from the verdicts alone (a covering
    index; joining every verdict to its wide task row is what made this slow). Callers keep only the
    undecided ones."""
    return (Review.objects.order_by().filter(adjudication=False).values("task_id")
            .annotate(kinds=Count("verdict", distinct=True)).filter(kinds__gt=1).values("task_id"))


def disputed_tasks(tasks: QuerySet[Task]) -> QuerySet[Task]:
    """Undecided tasks whose reviewers gave different verdicts (the adjudication list)."""
    return tasks.filter(pk__in=_disputed_ids()).exclude(review_status__in=DECIDED)


def review_history(task: Task) -> list[ReviewEvent]:
    return list(task.review_events.select_related("actor").order_by("at", "id"))


def verdicts_for(task: Task, user: Any) -> dict[str, Any]:
    """The task's verdicts as ``user`` may see them: others' only after their own (or when the task
    is decided, or to an adjudicator of a disagreement)."""
    reviews = list(task.reviews.select_related("reviewer").prefetch_related("reasons").order_by("created_at"))
    mine = next((r for r in reviews if r.reviewer_id == user.pk), None)
    decided = task.review_status in (ReviewStatus.APPROVED, ReviewStatus.REJECTED, ReviewStatus.NEEDS_CHANGES)
    disputed = len({r.verdict for r in reviews if not r.adjudication}) > 1
    visible = decided or mine is not None or disputed
    return {"mine": mine, "others": [r for r in reviews if r.reviewer_id != user.pk] if visible else [],
            "hidden": 0 if visible else len([r for r in reviews if r.reviewer_id != user.pk]),
            "count": len(reviews), "disputed": disputed}


def agreement(queue_tasks: QuerySet[Task], required: int) -> dict[str, Any]:
    """Fleiss' κ over tasks with ``required`` (≥ 2) verdicts, and Cohen's κ for each pair of
    reviewers who share at least five tasks. Kept in the cache until a verdict changes (it reads
    every verdict of the tasks reviewed more than once)."""
    from django.core.cache import cache
    from django.db.models import Max

    state = Review.objects.order_by().aggregate(n=Count("pk"), last=Max("updated_at"))
    basis = f"{required}|{state['n']}|{state['last']}|{queue_tasks.query}"
    key = "review-agreement:" + hashlib.sha256(basis.encode()).hexdigest()
    found = cache.get(key)
    if found is None:
        found = _agreement(queue_tasks, required)
        cache.set(key, found, timeout=600)
    return found


def _agreement(queue_tasks: QuerySet[Task], required: int) -> dict[str, Any]:
    from itertools import combinations

    from .agreement import cohen_kappa, fleiss_kappa

    several = (Review.objects.order_by().filter(adjudication=False).values("task_id").annotate(n=Count("pk"))
               .filter(n__gt=1).values("task_id"))
    rows = Review.objects.order_by().filter(task__in=queue_tasks, adjudication=False, task_id__in=several).values_list(
        "task_id", "reviewer__username", "verdict")
    by_task: dict[int, dict[str, str]] = defaultdict(dict)
    for task_id, reviewer, verdict in rows:
        by_task[task_id][reviewer] = verdict
    n = max(required, 2)
    complete = [list(v.values()) for v in by_task.values() if len(v) == n]
    pairs = []
    reviewers = sorted({r for v in by_task.values() for r in v})
    for a, b in combinations(reviewers, 2):
        shared = [(v[a], v[b]) for v in by_task.values() if a in v and b in v]
        if len(shared) >= 5:
            pairs.append({"a": a, "b": b, "items": len(shared), "kappa": cohen_kappa(shared)})
    return {"fleiss": fleiss_kappa(complete) if complete else None, "fleiss_items": len(complete), "raters": n,
            "pairs": pairs, "multi_reviewed": sum(1 for v in by_task.values() if len(v) >= 2)}


def rejection_reasons() -> list[RejectionReason]:
    return list(RejectionReason.objects.filter(active=True).order_by("position", "label"))


def s0_table(task: Task, table: str) -> dict[str, Any]:
    """The rows of one table of a task's s0, each marked: a distractor, added for the task, or the
    domain's fixture."""
    rows = (task.s0 or {}).get(table)
    if rows is None:
        raise Http404(f"s0 has no table {table!r}")
    distractors = {str(d.get("pk")): d.get("why") or "distractor" for d in task.distractors or [] if d.get("table") == table}
    added = {str(r.get("pk")): r.get("why") or "added for the task" for r in (task.evaluation or {}).get("rows_added", [])
             if r.get("table") == table}
    columns: list[str] = []
    for row in rows.values():
        for column in row:
            if column not in columns:
                columns.append(column)
    marked = [{"pk": pk, "cells": [row.get(c) for c in columns],
               "mark": "distractor" if str(pk) in distractors else "added" if str(pk) in added else "",
               "why": distractors.get(str(pk)) or added.get(str(pk)) or ""} for pk, row in rows.items()]
    marked.sort(key=lambda r: (r["mark"] == "", str(r["pk"])))
    return {"task": task, "table": table, "columns": columns, "rows": marked}


def s0_tables(task: Task) -> list[dict[str, Any]]:
    """Each s0 table with its row count and how many of them are distractors or added for the task."""
    distractors = Counter(d.get("table") for d in task.distractors or [])
    added = Counter(r.get("table") for r in (task.evaluation or {}).get("rows_added", []))
    return [{"name": name, "rows": len(rows), "distractors": distractors.get(name, 0), "added": added.get(name, 0)}
            for name, rows in sorted((task.s0 or {}).items())]


def diff_rows(diff: dict[str, Any], policies: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """A state diff as table rows for a page: each added row's columns, each changed column (before →
    after), each removed row, with the column's reward policy."""
    tables = []
    for table, change in sorted(diff.items()):
        policy_of = policies.get(table, {})
        rows: list[dict[str, Any]] = []
        for pk, row in (change.get("added") or {}).items():
            rows += [{"kind": "added", "pk": pk if i == 0 else "", "column": column, "policy": policy_of.get(column, ""),
                      "before": None, "after": value} for i, (column, value) in enumerate(row.items())]
        for pk, columns in (change.get("changed") or {}).items():
            rows += [{"kind": "changed", "pk": pk if i == 0 else "", "column": column,
                      "policy": policy_of.get(column, ""), "before": values[0], "after": values[1]}
                     for i, (column, values) in enumerate(columns.items())]
        for pk, row in (change.get("removed") or {}).items():
            rows.append({"kind": "removed", "pk": pk, "column": "", "policy": "", "before": row, "after": None})
        tables.append({"table": table, "rows": rows})
    return tables


# ---------------------------------------------------------------------------------------------
# Exports (item 8): which tasks and runs an export holds, read in pages; who may see and fetch it

EXPORT_FILTER_KEYS = tuple(dict.fromkeys(("domain", *TaskFilter.Meta.fields)))
REWARDED_TERMINATIONS = (Run.Termination.AGENT_STOP, Run.Termination.USER_STOP)


def is_admin(user: Any) -> bool:
    """Superusers and the Admin group: the only accounts that may export tasks of every review status
    (remembered on the user object for the request, like Django's permission cache)."""
    cached = getattr(user, "_scaleenv_is_admin", None)
    if cached is None:
        cached = role_of(user) == ADMIN
        if getattr(user, "is_authenticated", False):
            user._scaleenv_is_admin = cached
    return cached


def export_tasks(filters: dict[str, Any], only_approved: bool = True) -> QuerySet[Task]:
    """The tasks an export with these filters holds: the review queue's filters (TaskFilter), then
    only the approved ones unless ``only_approved`` is off. The one place filter keys are mapped.

    ``domain`` may be one slug or a list of slugs (the command's repeated ``--domain``). Unknown keys
    and invalid values raise ValueError: silently ignoring a filter would export more than asked."""
    unknown = sorted(set(filters) - set(EXPORT_FILTER_KEYS))
    if unknown:
        raise ValueError(f"unknown filter {', '.join(unknown)} (known: {', '.join(EXPORT_FILTER_KEYS)})")
    params = {k: v for k, v in filters.items() if v not in (None, "", [])}
    domains = params.pop("domain", None)
    task_filter = TaskFilter(params, queryset=Task.objects.all())
    if not task_filter.is_valid():
        raise ValueError("; ".join(f"{name}: {' '.join(errors)}" for name, errors in task_filter.errors.items()))
    tasks = task_filter.qs
    if domains:
        slugs = [domains] if isinstance(domains, str) else list(domains)
        known = set(Domain.objects.filter(slug__in=slugs).values_list("slug", flat=True))
        missing = sorted(set(slugs) - known)
        if missing:
            raise ValueError(f"no domain {', '.join(missing)}")
        tasks = tasks.filter(domain__slug__in=slugs)
    if only_approved:
        tasks = tasks.filter(review_status=ReviewStatus.APPROVED)
    return tasks


def export_ids(queryset: QuerySet[Any]) -> array:
    """The ids an export will write, ascending, read once at its start (8 bytes each: 100,000 tasks
    take 800 KB). Fixing them first makes ``total`` exact, and makes every later page a lookup by
    primary key, whose cost does not depend on the planner's statistics: after a bulk approval
    PostgreSQL may not have re-analyzed the table yet, and ``status = 'approved' AND id > last ORDER
    BY id LIMIT n`` then sorts every approved row once per page."""
    return array("q", queryset.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=10_000))


def _id_pages(ids: array, page_size: int) -> Any:  # Iterator[list[int]]
    for start in range(0, len(ids), page_size):
        yield ids[start:start + page_size].tolist()


def export_task_pages(tasks: QuerySet[Task], ids: array, page_size: int = 500) -> Any:  # Iterator[list[dict]]
    """Pages of ``tasks`` among ``ids`` as plain dicts for the tasks writer: scalar fields, the JSON
    columns as their stored text (never decoded), and each task's review events.

    One short query per page (by primary key, the filter applied again: a task that stopped matching
    since the export began, say no longer approved, is left out) and one for its events; no
    transaction stays open across the export (on SQLite it would hold the write lock). Memory is
    bounded by the page."""
    # SQLite hands a BLOB over as bytes: the writer then copies them with no decode and re-encode.
    text = BinaryField() if connections[tasks.db].vendor == "sqlite" else TextField()
    raw = {f"{name}__raw": Cast(name, output_field=text) for name in TASK_JSON_FIELDS}
    columns = list(TASK_FIELDS) + list(raw)
    for chunk in _id_pages(ids, page_size):
        rows = list(tasks.filter(pk__in=chunk).annotate(**raw).order_by("pk").values_list(*columns))
        events = _events_by_task([r[0] for r in rows])
        page = []
        for row in rows:
            task = dict(zip(TASK_FIELDS, row))
            task.update(zip(TASK_JSON_FIELDS, row[len(TASK_FIELDS):]))  # JSON text: the writer copies it
            task["events"] = events.get(task["id"], [])
            page.append(task)
        yield page


def _events_by_task(task_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    events: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in ReviewEvent.objects.filter(task_id__in=task_ids).order_by("task_id", "at", "id").values(
            "task_id", "action", "from_status", "to_status", "actor__username", "at", "reasons", "comment"):
        e["actor"] = e.pop("actor__username")
        events[e.pop("task_id")].append(e)
    return events


def export_runs(tasks: QuerySet[Task]) -> QuerySet[Run]:
    """The successful runs of ``tasks`` (reward 1 and ended by the agent or the user): the OpenAI
    fine-tuning export's examples."""
    return Run.objects.filter(task__in=tasks.values("pk"), reward=1.0, termination__in=REWARDED_TERMINATIONS)


RUN_EXPORT_FIELDS = ("id", "task_id", "agent", "trial", "reward", "messages", "task__content_hash",
                     "task__domain_id", "task__domain__slug", "task__review_status")


def export_run_pages(runs: QuerySet[Run], ids: array, page_size: int = 200) -> Any:  # Iterator[list[dict]]
    """Pages of ``runs`` among ``ids`` as plain dicts for the OpenAI writer (as for tasks: by primary
    key, the filter applied again)."""
    for chunk in _id_pages(ids, page_size):
        rows = runs.filter(pk__in=chunk).order_by("pk").values(*RUN_EXPORT_FIELDS)
        yield [{"id": r["id"], "task_id": r["task_id"], "agent": r["agent"], "trial": r["trial"], "reward": r["reward"],
                "messages": r["messages"], "content_hash": r["task__content_hash"], "domain_id": r["task__domain_id"],
                "domain": r["task__domain__slug"], "review_status": r["task__review_status"]} for r in rows]


class ExportDomains(dict):
    """Domain id → DomainInfo, loaded the first time a task of that domain is written (a few
    queries per domain, never per task)."""

    def __missing__(self, domain_id: int) -> DomainInfo:
        view = domain_view(Domain.objects.only("id", "slug", "spec_hash").get(pk=domain_id))
        info = DomainInfo(slug=view.slug, name=view.name, policy=view.policy, policy_version=view.policy_version,
                          tools=openai_tools(view),
                          column_policies={table: {column: spec.get("policy", "exact")
                                                   for column, spec in t["columns"].items()}
                                           for table, t in view.schema["tables"].items()})
        self[domain_id] = info
        return info


EXPORT_LIST_FIELDS = ("id", "requester__username", "requester_id", "batch_id", "format", "filters", "only_approved", "status",
                      "total", "written", "size_bytes", "file_name", "sha256", "app_version", "error", "created_at",
                      "started_at", "finished_at")


def export_list() -> QuerySet[Export]:
    """Every export, newest first, without loading anything big (the page is paginated)."""
    return Export.objects.select_related("requester").only(*EXPORT_LIST_FIELDS).order_by("-created_at", "-pk")


def can_export(user: Any) -> bool:
    """Researchers and Admins (Curators and Viewers do not export)."""
    return user.has_perm("tasks.export_dataset") and user.has_perm("tasks.add_export")


def can_download(user: Any, export: Export, admin: bool | None = None) -> bool:
    """Downloading needs the export permission, and the export must be yours, unless you are an Admin."""
    if not user.has_perm("tasks.export_dataset"):
        return False
    return export.requester_id == user.pk or (is_admin(user) if admin is None else admin)


def export_rows(exports: Any, user: Any) -> list[Export]:
    """Exports with what a row shows: whether this user may download it, its duration, its filter in
    words, and whether the page should keep polling it."""
    admin = is_admin(user)
    rows = list(exports)
    for e in rows:
        e.can_download = e.status == Export.Status.DONE and can_download(user, e, admin)
        e.seconds = round((e.finished_at - e.started_at).total_seconds(), 1) if e.started_at and e.finished_at else None
        e.filter_text = ", ".join(f"{k} {', '.join(v) if isinstance(v, list) else v}"
                                  for k, v in sorted((e.filters or {}).items())) or "no filter"
        e.live = e.status in (Export.Status.QUEUED, Export.Status.RUNNING)
        e.percent = round(100 * e.written / e.total) if e.total else 0
    return rows


def export_filter_form(filters: dict[str, Any], user: Any) -> list[Any]:
    """The review queue's filter fields for the start form (bound to what was posted). The domain
    gets its own select; the review status only shows to Admins (others export approved tasks)."""
    form = TaskFilter({k: v for k, v in filters.items() if k != "domain"}, queryset=Task.objects.none()).form
    if "q" in form.fields:  # the queue's "/" shortcut does not exist on this page
        form.fields["q"].widget.attrs = {"type": "search", "placeholder": "intent or words"}
    admin = is_admin(user)
    return [form[name] for name in form.fields if name != "domain" and (admin or name != "review_status")]


def export_domain_choices() -> list[tuple[str, str]]:
    return list(Domain.objects.order_by("name").values_list("slug", "name"))


# ---------------------------------------------------------------------------------------------
# Batches page (issue 9, item 6): past batches with their figures, and one batch's live progress


BATCH_LIST_FIELDS = ("id", "kind", "backend", "params", "status", "total_items", "done_items", "failed_items",
                     "counters", "error", "created_at", "started_at", "finished_at")


def batch_list(kind: str | None = None) -> QuerySet[Batch]:
    """Batches, newest first (every kind: synthesis, tasks, rollouts, bulk reviews, exports...)."""
    batches = Batch.objects.only(*BATCH_LIST_FIELDS).order_by("-created_at", "-pk")
    return batches.filter(kind=kind) if kind else batches


def batch_elapsed(batch: Batch, now: Any = None) -> float | None:
    """Seconds of work so far (to the end when finished); None before any item was claimed."""
    if batch.started_at is None:
        return None
    return max(0.0, ((batch.finished_at or now or timezone.now()) - batch.started_at).total_seconds())


def batch_figures(batch: Batch, now: Any = None) -> dict[str, Any]:
    """What a row of the batches list says about a batch: its kind's own words, a few extra
    figures from its counters, and its rate."""
    c = batch.counters or {}
    extra: list[str] = []
    if batch.kind == "synthesis" and c.get("repairs"):
        extra.append(f"{c['repairs']} repaired")
    elif batch.kind == "tasks" and c.get("tasks_created"):
        made = c["tasks_created"]
        extra.append(f"{c.get('kind_question', 0) / made:.0%} questions · {c.get('kind_refusal', 0) / made:.0%} refusals")
        flags = sum(v for k, v in c.items() if k.startswith("flag_"))
        if flags:
            extra.append(f"{flags} audit flags")
    elif batch.kind == "rollout" and c.get("runs"):
        extra.append(f"{c.get('successes', 0)}/{c['runs']} with reward 1")
    elapsed = batch_elapsed(batch, now)
    finished = batch.done_items + batch.failed_items
    rate = finished / elapsed if elapsed and finished else None
    params = " · ".join(f"{k} {v}" for k, v in batch_params(batch, shorten=3))
    return {"text": batch.progress_text, "extra": extra, "elapsed": elapsed, "rate": rate, "params": params}


def batch_params(batch: Batch, shorten: int = 8) -> list[tuple[str, str]]:
    """The parameters a batch was started with, as label and text (long lists shortened)."""
    out = []
    for key, value in (batch.params or {}).items():
        if key.endswith("_hash") or key.endswith("_ids"):
            continue
        if isinstance(value, list):
            text = ", ".join(str(v) for v in value[:shorten]) + (
                f" … ({len(value)} in all)" if len(value) > shorten else "")
        else:
            text = str(value)
        out.append((key.replace("_", " "), text))
    return out


def _batch_results(batch: Batch, limit: int = 12) -> dict[str, Any]:
    """What a finished batch made, to link to (bounded: counts and the first ``limit`` rows)."""
    ids = list(batch.items.filter(status=BatchItem.Status.DONE).exclude(result_id=None)
               .order_by("pk").values_list("result_id", flat=True)[:limit])
    if batch.kind == "synthesis":
        return {"domains": list(Domain.objects.filter(pk__in=ids).only("id", "name", "slug", "status").order_by("name"))}
    if batch.kind == "tasks":
        return {"tasks": list(Task.objects.filter(pk__in=ids).select_related("domain").only(
            "id", "kind", "status", "intent", "domain__name").order_by("pk"))}
    if batch.kind == "rollout":
        return {"runs": list(Run.objects.filter(pk__in=ids).only("id", "task_id", "agent", "trial", "reward",
                                                                   "termination").order_by("pk"))}
    return {}


def batch_live(batch: Batch, idle_since: float | None = None, seen: str = "", idle_after: float = 5.0) -> dict[str, Any]:
    """One batch's progress for the live fragment: bar, counts, stage, errors, elapsed time, and
    whether work is waiting that no worker takes.

    "Waiting for a worker" is judged from what the poller saw before (``seen``: a signature of
    the counts; ``idle_since``: since when nothing moved): items wait, none is held under a live
    lease, and the counts have not changed for ``idle_after`` seconds. The rows say nothing about
    Celery itself, so this is the honest test: no work is being done on this batch."""
    now = timezone.now()
    rows = batch.items.order_by().values("status").annotate(
        n=Count("pk"), live=Count("pk", filter=Q(lease_expires_at__gt=now)))
    counts = {s: 0 for s in BatchItem.Status.values}
    running_live = 0
    for row in rows:
        counts[row["status"]] += row["n"]
        if row["status"] == BatchItem.Status.RUNNING:
            running_live = row["live"]
    waiting = counts[BatchItem.Status.QUEUED] + counts[BatchItem.Status.RETRY] + counts[BatchItem.Status.RUNNING] - running_live
    signature = f"{batch.done_items}-{batch.failed_items}-{running_live}-{waiting}"
    idle = not batch.finished and running_live == 0 and waiting > 0
    if not idle:
        idle_since = None
    elif idle_since is None or seen != signature or idle_since > now.timestamp():
        # A batch nobody ever claimed has waited since it was made; anything else from now on.
        idle_since = batch.created_at.timestamp() if (
            batch.status == Batch.Status.QUEUED and idle_since is None) else now.timestamp()
    idle_for = now.timestamp() - idle_since if idle_since is not None else 0.0
    problems = list(batch.items.filter(Q(status__in=[BatchItem.Status.FAILED, BatchItem.Status.POISONED])
                                       | Q(status=BatchItem.Status.RETRY) & ~Q(error=""))
                    .only("id", "item_key", "seed", "status", "attempts", "error").order_by("pk")[:10])
    figures = batch_figures(batch, now)
    return {"batch": batch, "counts": counts, "running": running_live, "waiting": waiting, "signature": signature,
            "idle_since": idle_since, "idle_for": idle_for, "no_worker": idle and idle_for >= idle_after,
            "problems": problems, "figures": figures,
            "waited": (now - batch.created_at).total_seconds() if batch.started_at is None else None,
            "counters": sorted((k.replace("_", " "), v) for k, v in (batch.counters or {}).items()),
            "results": _batch_results(batch) if batch.finished else {}}


def export_dir() -> Path:
    return Path(settings.SCALEENV_EXPORT_DIR)


def metadata_name(file_name: str) -> str:
    """The OpenAI export's sidecar: each line's run, task, content hash, reward and review status."""
    return file_name.removesuffix(".jsonl") + ".metadata.jsonl"


def export_file(export: Export, part: str = "data") -> Path | None:
    """The finished file of an export (``part`` "metadata": the OpenAI sidecar), or None when there is
    none. Names are ours (never user input), and the path must stay inside the export folder."""
    if export.status != Export.Status.DONE or not export.file_name:
        return None
    if part == "metadata" and export.format != Export.Format.OPENAI_JSONL:
        return None
    name = metadata_name(export.file_name) if part == "metadata" else export.file_name
    directory = export_dir().resolve()
    path = (directory / name).resolve()
    return path if path.parent == directory and path.is_file() else None


# ---------------------------------------------------------------------------------------------
# Trajectory replay (item 4): the run page's header, step summaries for the controls, one page of
# steps, one step's body, the first failing step, the gold chain beside the agent's calls and the
# final state against s_gt. The page never loads step bodies beyond the page it shows; each
# request uses a fixed number of queries whatever the run's length.


REPLAY_STEPS_PER_PAGE = 50
REPLAY_EXCERPT_CHARS = 240  # of a message in a step's header line
REPLAY_ARGS_EXCERPT_CHARS = 160  # of a tool call's arguments in its header line
GOLD_ARGS_SHOWN_CHARS = 300  # of the arguments beside the gold chain (the step itself shows them all)
REPLAY_PREVIEW_CHARS = 5000  # longer text in a step body is collapsed behind "show all"
REPLAY_DIFF_ROWS = 40  # rows per section of a step's diff before "show all"
REPLAY_FINAL_ROWS = 60  # rows per table in the final-state panel
REPLAY_BODY_PARTS = ("arguments", "observation", "content", "diff")
REPLAY_RUN_FIELDS = ("id", "task_id", "agent", "agent_model", "user", "trial", "seed", "reward", "breakdown",
                     "termination", "tool_errors", "seconds", "final_hash", "step_count", "owner_id", "batch_id",
                     "created_at", "task__id", "task__kind", "task__intent", "task__domain_id", "task__gold_chain",
                     "task__gold_calls")
FAILING_STEP_RULE = (
    "The first failing step is, in this order: (1) the earliest tool call that left a wrong value in the final "
    "state: of the cells the reward found wrong (a mismatching column, a row the gold state does not have, a "
    "row it keeps that is gone), the step that wrote each one last; the earliest of those; (2) if no step wrote "
    "a wrong cell (the agent left something undone, or only the answer or the refusal is wrong), the first tool "
    "call that failed; (3) otherwise the agent's last step, where the run ended without reaching the goal. "
    "A run with reward 1 has none.")


@dataclass(frozen=True)
class FailingStep:
    index: int
    rule: str  # wrote_wrong_value | tool_error | ended
    why: str


def _shown(value: Any) -> str:
    """A state value as a curator reads it: text as is, everything else as JSON."""
    if isinstance(value, str):
        return value if value else '""'
    return json.dumps(value, ensure_ascii=False, default=str)


def _clipped(text: str, limit: int = GOLD_ARGS_SHOWN_CHARS) -> str:
    """At most ``limit`` characters, the cut marked with how long the whole is."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def _pretty(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _pretty_text(text: str) -> str:
    """A tool result as stored (a JSON string when it parses: then indented)."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return _pretty(json.loads(stripped))
        except ValueError:
            pass
    return text


def _preview(text: str, limit: int = REPLAY_PREVIEW_CHARS) -> dict[str, Any]:
    return {"text": text[:limit], "total": len(text), "cut": len(text) > limit}


def wrong_cells(breakdown: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """What the reward found wrong, per (table, row): each item names a column (or None: the whole
    row) and says why. The breakdown keeps the first 20 of each list per table."""
    wrong: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for table in breakdown.get("failing_tables") or []:
        name = table.get("table", "")
        for m in table.get("mismatches") or []:
            wrong[(name, str(m.get("pk")))].append({
                "column": m.get("column"), "policy": m.get("policy", "exact"),
                "why": f"{m.get('why', 'mismatch')}: expected {_shown(m.get('expected'))}, got {_shown(m.get('got'))}"})
        for pk in table.get("extra") or []:
            wrong[(name, str(pk))].append({"column": None, "why": "a row the gold state does not have"})
        for pk in table.get("missing") or []:
            wrong[(name, str(pk))].append({"column": None, "why": "a row the gold state has, missing here"})
    return dict(wrong)


def locate_wrong_write(wrong: dict[tuple[str, str], list[dict[str, Any]]],
                       diffs: Iterable[tuple[int, dict[str, Any]]]) -> tuple[int, str] | None:
    """The earliest step among those that wrote a wrong cell last, and what it wrote: ``diffs`` are
    (step index, state diff) of tool calls in step order."""
    last: dict[tuple[str, str, str | None], int] = {}  # (table, pk, column or None) -> last writing step
    for index, diff in diffs:
        for table, change in (diff or {}).items():
            for section in ("added", "removed"):
                for pk in (change.get(section) or {}):
                    if (table, str(pk)) in wrong:
                        last[(table, str(pk), None)] = index  # the whole row
            for pk, columns in (change.get("changed") or {}).items():
                if (table, str(pk)) in wrong:
                    last[(table, str(pk), "*")] = index
                    for column in columns:
                        last[(table, str(pk), column)] = index
    best: tuple[int, str] | None = None
    for (table, pk), items in sorted(wrong.items()):
        for item in items:
            column = item["column"]
            keys = [(table, pk, None)] + ([(table, pk, column)] if column else [(table, pk, "*")])
            writers = [last[k] for k in keys if k in last]
            if not writers:
                continue  # never written: an omission, not this step's doing
            step = max(writers)
            cell = f"{table}[{pk}].{column}" if column else f"{table}[{pk}]"
            if best is None or step < best[0]:
                best = (step, f"wrote {cell}, which the reward found wrong ({item['why']})")
    return best


def first_failing_step(run: Run, summaries: list[dict[str, Any]]) -> FailingStep | None:
    """See FAILING_STEP_RULE (also in docs/decisions.md, "Trajectory view"). One query at most: the
    diffs of the tool calls that touched a table the reward found wrong."""
    if run.reward is None or run.reward >= 1.0 or not summaries:
        return None
    wrong = wrong_cells(run.breakdown or {})
    if wrong:
        touches = Q()
        for table in sorted({t for t, _ in wrong}):
            touches |= Q(diff__has_key=table)
        # Only calls of the domain's mutating tools can have written a cell (a read-only call's
        # stored diff, if any, is not trusted); a subquery, not one more query.
        writers = Tool.objects.filter(domain_id=run.task.domain_id, mutates=True).values("name")
        diffs = (RunStep.objects.filter(run_id=run.pk, kind=RunStep.Kind.TOOL_CALL, tool__in=writers).filter(touches)
                 .order_by("index").values_list("index", "diff"))
        found = locate_wrong_write(wrong, diffs.iterator(chunk_size=200))
        if found is not None:
            return FailingStep(found[0], "wrote_wrong_value", found[1])
    for s in summaries:
        if s["kind"] == RunStep.Kind.TOOL_CALL and s["outcome"] != "success":
            return FailingStep(s["index"], "tool_error",
                               f"the first tool call that failed ({s['outcome'].replace('_', ' ')}); "
                               "no step wrote a value the reward found wrong")
    agent_steps = [s for s in summaries if s["kind"] != RunStep.Kind.USER] or summaries
    reasons = (run.breakdown or {}).get("reasons") or []
    first_reason = f": {reasons[0]}" if reasons else ""
    return FailingStep(agent_steps[-1]["index"], "ended",
                       f"the agent's last step: the run ended without reaching the goal{first_reason}")


def step_summaries(run: Run) -> list[dict[str, Any]]:
    """Every step's index, kind, tool and outcome (the slider's strip and the gold-chain panel):
    a few bytes per step, never a body."""
    return list(RunStep.objects.filter(run_id=run.pk).order_by("index").values("index", "kind", "tool", "outcome"))


def gold_beside_calls(run: Run, summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Each gold step with the agent's call that matches it (same tool, in order, succeeded; the same
    arguments preferred), and the agent's calls that match no gold step. One query: the arguments of
    the agent's calls to the gold chain's tools."""
    task = run.task
    chain = task.gold_chain or []
    literal = task.gold_calls or []
    gold_tools = sorted({g["tool"] for g in chain})
    arguments = dict(RunStep.objects.filter(run_id=run.pk, kind=RunStep.Kind.TOOL_CALL, tool__in=gold_tools)
                     .values_list("index", "arguments")) if gold_tools else {}
    calls = [s for s in summaries if s["kind"] == RunStep.Kind.TOOL_CALL]
    used: set[int] = set()
    position = 0
    rows = []
    for n, step in enumerate(chain):
        args = literal[n].get("args", step.get("args")) if n < len(literal) and literal[n] else step.get("args")
        later = [c for c in calls[position:] if c["tool"] == step["tool"] and c["outcome"] == "success"
                 and c["index"] not in used]
        match = next((c for c in later if arguments.get(c["index"]) == args), None) or (later[0] if later else None)
        if match is not None:
            used.add(match["index"])
            position = calls.index(match) + 1
        rows.append({"n": n + 1, "tool": step["tool"], "args": _clipped(_shown(args)),
                     "step": match["index"] if match else None,
                     "same_args": match is not None and arguments.get(match["index"]) == args,
                     "agent_args": _clipped(_shown(arguments.get(match["index"]))) if match else ""})
    others = [c for c in calls if c["index"] not in used]
    return {"rows": rows, "others": others[:200], "others_total": len(others), "calls": len(calls)}


def explain_breakdown(run: Run) -> dict[str, Any]:
    """The reward's breakdown, arranged to say why a run earned 0."""
    from tasks.rollout.episode import REWARDED

    b = run.breakdown or {}
    causes = []
    if run.reward is not None and run.reward < 1.0:
        if run.termination not in REWARDED and run.termination != Run.Termination.RUNNING:
            causes.append(f"the run ended by {run.termination.replace('_', ' ')}, which is never rewarded "
                          "(only agent_stop and user_stop are)")
        failing = b.get("failing_tables") or []
        if b.get("db_match") is False:
            causes.append(f"the final state differs from s_gt in {len(failing)} table(s): "
                          + ", ".join(t.get("table", "") for t in failing))
        if b.get("communicate_ok") is False:
            for c in b.get("communicate_checks") or []:
                if c.get("met"):
                    continue
                if c.get("ruled_out"):
                    causes.append(f"the answer was hedged: the reply also says {', '.join(map(str, c['ruled_out']))}")
                elif c.get("recital"):
                    causes.append(f"the reply recites {c['recital']} other values it saw instead of answering")
                else:
                    causes.append("the answer the user needed was not given")
        if b.get("refusal_ok") is False:
            causes.append("the request had to be refused with its reason, and was not")
    # Every number on the page comes from the per-table checks: a failing table the summary lacks
    # is added to it, and the partial score is recomputed from the same checks (the reward's rule:
    # table checks, answer checks and the refusal check, passed over total).
    table_info = {name: dict(info) for name, info in (b.get("tables") or {}).items()}
    for t in b.get("failing_tables") or []:
        info = table_info.setdefault(t.get("table"), {})
        info.update(ok=False, checks=t.get("checks", info.get("checks")), passed=t.get("passed", info.get("passed")))
    tables = sorted(table_info.items(), key=lambda kv: (kv[1].get("ok", True), kv[0]))
    comms, refusal = b.get("communicate_checks") or [], b.get("refusal_check")
    checks = sum(info.get("checks") or 0 for info in table_info.values()) + len(comms) + (1 if refusal else 0)
    passed = (sum(info.get("passed") or 0 for info in table_info.values()) + sum(1 for c in comms if c.get("met"))
              + (1 if refusal and refusal.get("met") else 0))
    partial = round(passed / checks, 4) if checks else b.get("partial")
    failing_tables = []
    for t in b.get("failing_tables") or []:
        failing_tables.append({
            "table": t.get("table"), "checks": t.get("checks"), "passed": t.get("passed"),
            "mismatches": [{**m, "expected": _shown(m.get("expected")), "got": _shown(m.get("got"))}
                           for m in t.get("mismatches") or []],
            "missing": [str(pk) for pk in t.get("missing") or []], "extra": [str(pk) for pk in t.get("extra") or []],
            "capped": any(len(t.get(k) or []) >= 20 for k in ("mismatches", "missing", "extra"))})
    return {"causes": causes, "reasons": b.get("reasons") or [], "partial": partial, "checks": checks,
            "passed": passed, "tables": tables, "failing_tables": failing_tables, "communicate": b.get("communicate_checks") or [],
            "refusal": b.get("refusal_check"), "empty": not b}


def replay_step_rows(run: Run, page: int, open_all: bool = False) -> dict[str, Any]:
    """One page of steps (``REPLAY_STEPS_PER_PAGE``) by index: header lines, or, with ``open_all``,
    the bodies too (one query either way)."""
    count = run.step_count
    pages = max(1, -(-count // REPLAY_STEPS_PER_PAGE))
    page = min(max(1, page), pages)
    low = (page - 1) * REPLAY_STEPS_PER_PAGE
    rows = RunStep.objects.filter(run_id=run.pk, index__gte=low, index__lt=low + REPLAY_STEPS_PER_PAGE).order_by("index")
    if open_all:
        steps = [dict(step_header(s), body=step_body(s)) for s in rows]
    else:
        rows = rows.only("id", "run_id", "index", "kind", "tool", "outcome", "executed", "duration_ms").annotate(
            excerpt=Substr("content", 1, REPLAY_EXCERPT_CHARS), content_chars=Length("content"),
            args_excerpt=Substr(Cast("arguments", TextField()), 1, REPLAY_ARGS_EXCERPT_CHARS),
            error_excerpt=Substr("observation", 1, REPLAY_EXCERPT_CHARS))
        steps = [step_header(s) for s in rows]
    return {"steps": steps, "page": page, "pages": pages, "count": count, "per_page": REPLAY_STEPS_PER_PAGE,
            "first": low, "last": min(count, low + REPLAY_STEPS_PER_PAGE) - 1,
            "previous_page": page - 1 if page > 1 else None, "next_page": page + 1 if page < pages else None}


def step_header(step: RunStep) -> dict[str, Any]:
    """A step's one-line header: kind, tool and a short excerpt of its arguments, outcome, time."""
    if hasattr(step, "excerpt"):
        excerpt, chars = step.excerpt or "", step.content_chars or 0
        args = step.args_excerpt or ""
        error = step.error_excerpt or ""
    else:
        excerpt, chars = step.content[:REPLAY_EXCERPT_CHARS], len(step.content)
        args = json.dumps(step.arguments, ensure_ascii=False)[:REPLAY_ARGS_EXCERPT_CHARS] if step.arguments is not None else ""
        error = step.observation[:REPLAY_EXCERPT_CHARS]
    failed = step.kind == RunStep.Kind.TOOL_CALL and step.outcome != "success"
    return {"index": step.index, "number": step.index + 1, "kind": step.kind, "tool": step.tool,
            "outcome": step.outcome, "executed": step.executed, "duration_ms": step.duration_ms,
            "excerpt": excerpt + ("…" if chars > len(excerpt) else ""),
            "args": args + ("…" if len(args) >= REPLAY_ARGS_EXCERPT_CHARS else ""), "failed": failed,
            "error": error if failed else ""}


def _diff_rows(rows: dict[str, Any], limit: int | None) -> dict[str, Any]:
    """Added or removed rows in full: one line per row, one column per field."""
    items = list(rows.items())
    columns: list[str] = []
    for _pk, row in items:
        for column in (row or {}):
            if column not in columns:
                columns.append(column)
    shown = items if limit is None else items[:limit]
    return {"columns": columns, "total": len(items), "cut": len(shown) < len(items),
            "rows": [{"pk": str(pk), "cells": [_shown((row or {}).get(c)) if c in (row or {}) else "" for c in columns]}
                     for pk, row in shown]}


def diff_view(diff: dict[str, Any], limit: int | None = REPLAY_DIFF_ROWS) -> dict[str, Any]:
    """A step's state diff per table: rows added and removed in full, changed rows column by column
    (before → after); ``limit`` rows per section (None: all)."""
    tables = []
    cut = False
    for table, change in sorted((diff or {}).items()):
        added = _diff_rows(change.get("added") or {}, limit)
        removed = _diff_rows(change.get("removed") or {}, limit)
        changed_items = list((change.get("changed") or {}).items())
        changed = changed_items if limit is None else changed_items[:limit]
        cut = cut or added["cut"] or removed["cut"] or len(changed) < len(changed_items)
        tables.append({"table": table, "added": added, "removed": removed, "changed_total": len(changed_items),
                       "changed": [{"pk": str(pk), "cells": [{"column": c, "before": _shown(v[0]), "after": _shown(v[1])}
                                                             for c, v in sorted(cols.items())]}
                                   for pk, cols in changed]})
    return {"tables": tables, "cut": cut}


def step_body(step: RunStep) -> dict[str, Any]:
    """What a step's card shows: the arguments, the result or error, the message, the state diff;
    long text collapsed behind "show all"."""
    return {"arguments": _preview(_pretty(step.arguments)) if step.arguments is not None else None,
            "observation": _preview(_pretty_text(step.observation)) if step.observation else None,
            "content": _preview(step.content) if step.content else None,
            "diff": diff_view(step.diff), "error": step.kind == RunStep.Kind.TOOL_CALL and step.outcome != "success"}


def replay_step(run: Run, index: int) -> RunStep:
    """One step of a run (its body), or 404."""
    step = RunStep.objects.filter(run_id=run.pk, index=index).first()
    if step is None:
        raise Http404("no such step")
    return step


def replay_step_part(step: RunStep, part: str) -> dict[str, Any]:
    """All of one part of a step's body ("show all")."""
    if part == "diff":
        return {"part": part, "diff": diff_view(step.diff, limit=None)}
    if part == "arguments":
        text = _pretty(step.arguments)
    elif part == "observation":
        text = _pretty_text(step.observation)
    else:
        text = step.content
    return {"part": part, "text": text}


def replay_page(run: Run, *, step: int | None = None, page: int | None = None) -> dict[str, Any]:
    """Everything the run page shows on load (bodies excepted: they load when a step opens)."""
    summaries = step_summaries(run)
    failing = first_failing_step(run, summaries)
    count = len(summaries)
    current = min(max(0, step), count - 1) if step is not None and count else None
    if page is None:
        page = current // REPLAY_STEPS_PER_PAGE + 1 if current is not None else 1
    run.step_count = count  # the rows are the truth (a session may be appending)
    return {"run": run, "task": run.task, "summaries": summaries, "failing": failing, "current": current,
            "rule": FAILING_STEP_RULE, "breakdown": explain_breakdown(run), "gold": gold_beside_calls(run, summaries),
            **replay_step_rows(run, page)}


def _differing_columns(final_row: dict[str, Any] | None, gold_row: dict[str, Any] | None) -> set[str]:
    if final_row is None or gold_row is None:
        return set()
    return {c for c in set(final_row) | set(gold_row) if final_row.get(c) != gold_row.get(c)}


def replay_final_state(run: Run) -> dict[str, Any]:
    """The final state against s_gt, for the rows either the gold chain or the agent touched (or the
    reward found wrong), every column coloured by its policy; wrong cells from the reward's breakdown."""
    from environments.runtime.statekit import diff_states

    final, task = run.final_state, run.task  # loaded with the run: final_state, task s0, s_gt, domain_id
    if final is None:
        return {"tables": [], "no_final": True}
    wrong = wrong_cells(run.breakdown or {})
    failing_tables = {t.get("table"): t for t in (run.breakdown or {}).get("failing_tables") or []}
    gold_diff, run_diff = diff_states(task.s0, task.s_gt), diff_states(task.s0, final)
    tables = []
    disagreements: list[str] = []
    unchanged = 0
    for name, pk_column, columns in Table.objects.filter(domain_id=task.domain_id).order_by("position").values_list(
            "name", "pk_column", "columns"):
        touched: set[str] = set()
        for d in (gold_diff.get(name), run_diff.get(name)):
            for section in ("added", "removed", "changed"):
                touched.update(str(pk) for pk in ((d or {}).get(section) or {}))
        touched.update(pk for t, pk in wrong if t == name)
        if not touched:
            unchanged += 1
            continue
        final_rows, gold_rows = final.get(name) or {}, task.s_gt.get(name) or {}
        info = failing_tables.get(name) or {}
        missing, extra = {str(p) for p in info.get("missing") or []}, {str(p) for p in info.get("extra") or []}
        cols = [{"name": c["name"], "policy": c.get("policy", "exact")} for c in columns if c["name"] != pk_column]
        shown = sorted(touched)[:REPLAY_FINAL_ROWS]
        # Columns that differ come first, so a wrong cell is in view without scrolling.
        differing = {c for t_pk in shown for c in _differing_columns(final_rows.get(t_pk), gold_rows.get(t_pk))}
        flagged = {i["column"] for pk in shown for i in wrong.get((name, pk), []) if i["column"]}
        cols.sort(key=lambda c: (c["name"] not in flagged, c["name"] not in differing))
        rows = []
        for pk in shown:
            f_row, g_row = final_rows.get(pk), gold_rows.get(pk)
            bad_columns = {i["column"] for i in wrong.get((name, pk), []) if i["column"]}
            if f_row is not None and g_row is not None:
                status = "wrong" if (name, pk) in wrong else "ok"
            elif g_row is not None:
                status = "missing" if pk in missing else "matched"  # a gold row the reward aligned by content
            else:
                status = "extra" if pk in extra else "matched"
            cells = []
            for c in cols:
                f_val = (f_row or {}).get(c["name"]) if f_row is not None else None
                g_val = (g_row or {}).get(c["name"]) if g_row is not None else None
                if c["name"] in bad_columns:
                    state = "wrong"
                elif f_row is not None and g_row is not None and f_val != g_val:
                    state = "accepted"  # differs, but the policy accepts it (exempt, same meaning)
                else:
                    state = "same"
                cells.append({"policy": c["policy"], "state": state,
                              "final": _shown(f_val) if f_row is not None else "",
                              "gold": _shown(g_val) if g_row is not None else ""})
            rows.append({"pk": pk, "status": status, "cells": cells, "in_final": f_row is not None,
                         "in_gold": g_row is not None})
        tables.append({"table": name, "pk": pk_column, "columns": cols, "rows": rows, "ok": name not in failing_tables,
                       "total": len(touched), "cut": len(touched) > REPLAY_FINAL_ROWS})
        # The breakdown and the stored states must tell the same story: a mismatch on a row both
        # states hold names the values the states hold. Say so when they do not (a stale breakdown).
        for m in info.get("mismatches") or []:
            f_row, g_row = final_rows.get(str(m.get("pk"))), gold_rows.get(str(m.get("pk")))
            if f_row is None or g_row is None or not m.get("column"):
                continue
            said = (_shown(m.get("expected")), _shown(m.get("got")))
            held = (_shown(g_row.get(m["column"])), _shown(f_row.get(m["column"])))
            if said != held:
                disagreements.append(f"{name}[{m.get('pk')}].{m['column']}: the breakdown says expected {said[0]}, "
                                     f"got {said[1]}; the states hold {held[0]} and {held[1]}")
    tables.sort(key=lambda t: (t["ok"], t["table"]))
    return {"tables": tables, "no_final": False, "unchanged": unchanged, "disagreements": disagreements}


def disputed_count() -> int:
    """How many undecided tasks have verdicts that disagree (read from the verdicts, not every task)."""
    return disputed_tasks(Task.objects.all()).count()
