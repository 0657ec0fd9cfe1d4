"""Reads for the quality page: synthesis, task, review and agent figures over time, by date range
and synthesis backend, drawn as server-made SVG (tasks/charts.py).

Every figure is an aggregate query (grouped by a time bucket in the database), never a scan of
rows into Python, except the two JSON lists that need counting by code (audit flags of flagged
tasks, reasons of rejections), which read only that one column of the rows that have them.

Time buckets: the range (the filter's dates, else the span of the data) is cut into hours, days,
weeks or months — the finest that gives at most ``MAX_BUCKETS`` buckets. Every figure is placed
by when its row was made (domains, tools, tests and edges by their domain's ``created_at``; tasks
by theirs; runs by theirs; review decisions by the task's ``reviewed_at``; rejection reasons by
the event's ``at``). "What waits for review" is the state now: the backend filter applies to it,
the date range does not.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from typing import Any, Callable

from django import forms
from django.db.models import Avg, Case, Count, IntegerField, Max, Min, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from environments.models import Dependency, Domain, Tool, ToolTest

from . import charts
from .models import RejectionReason, ReviewEvent, ReviewStatus, Run, Task

MAX_BUCKETS = 40
BACKENDS = ("procedural", "llm")
DECIDED = (ReviewStatus.APPROVED, ReviewStatus.REJECTED, ReviewStatus.NEEDS_CHANGES)
WAITING = (ReviewStatus.PENDING, ReviewStatus.IN_REVIEW, ReviewStatus.NEEDS_CHANGES)


class QualityFilterForm(forms.Form):
    """The page's GET parameters: a date range (inclusive) and a synthesis backend."""

    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    backend = forms.ChoiceField(required=False, label="Backend",
                                choices=[("", "every backend")] + [(b, b) for b in BACKENDS])

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError("The start date is after the end date.")
        return data


@dataclass
class QualityFilter:
    since: date | None = None
    until: date | None = None
    backend: str = ""

    def window(self) -> tuple[datetime | None, datetime | None]:
        """The range as aware datetimes, ``until`` inclusive (up to the end of that day)."""
        start = datetime.combine(self.since, time.min, tzinfo=dt_timezone.utc) if self.since else None
        end = (datetime.combine(self.until, time.min, tzinfo=dt_timezone.utc) + timedelta(days=1)) if self.until else None
        return start, end


def parse_filter(params: Any) -> tuple[QualityFilterForm, QualityFilter]:
    form = QualityFilterForm(params)
    if not form.is_valid():
        return form, QualityFilter()
    data = form.cleaned_data
    return form, QualityFilter(since=data.get("since"), until=data.get("until"), backend=data.get("backend") or "")


# ---------------------------------------------------------------------------------------------
# Time buckets


@dataclass(frozen=True)
class Buckets:
    unit: str  # hour, day, week, month
    starts: list[datetime]

    @property
    def labels(self) -> list[str]:
        years = {s.year for s in self.starts}
        if self.unit == "hour":
            return [s.strftime("%b %d %H:00") for s in self.starts]
        if self.unit == "day":
            return [s.strftime("%b %d" if len(years) == 1 else "%Y-%m-%d") for s in self.starts]
        if self.unit == "week":
            return [s.strftime("wk %b %d" if len(years) == 1 else "wk %Y-%m-%d") for s in self.starts]
        return [s.strftime("%b %Y") for s in self.starts]

    def trunc(self, column: str) -> Any:
        """The bucket number of ``column`` as an SQL expression: plain comparisons with the bucket
        edges (SQLite's date truncation is a Python function called per row: 100,000 tasks took
        0.6 s a query; this takes a tenth of it, and reads the same on PostgreSQL)."""
        edges = self.starts[1:] + [_step(self.starts[-1], self.unit)]
        return Case(*(When(**{f"{column}__lt": edge}, then=Value(i)) for i, edge in enumerate(edges)),
                    default=Value(None), output_field=IntegerField())

    def place(self, rows: list[dict[str, Any]], value: Callable[[dict[str, Any]], float]) -> list[float]:
        """Sum ``value(row)`` of rows (each with a ``bucket`` number) into the buckets."""
        out = [0.0] * len(self.starts)
        for row in rows:
            i = row["bucket"]
            if i is not None and 0 <= i < len(out):
                out[i] += value(row)
        return out


def _normal(moment: datetime | date | None) -> datetime | None:
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time.min)
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=dt_timezone.utc)
    return moment.astimezone(dt_timezone.utc)


def _floor(moment: datetime, unit: str) -> datetime:
    moment = moment.astimezone(dt_timezone.utc)
    if unit == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _step(moment: datetime, unit: str) -> datetime:
    if unit == "hour":
        return moment + timedelta(hours=1)
    if unit == "day":
        return moment + timedelta(days=1)
    if unit == "week":
        return moment + timedelta(days=7)
    return (moment.replace(day=28) + timedelta(days=4)).replace(day=1)


def buckets_for(first: datetime, last: datetime) -> Buckets:
    """The finest unit that cuts ``first``..``last`` into at most MAX_BUCKETS buckets."""
    for unit in ("hour", "day", "week", "month"):
        starts = [_floor(first, unit)]
        end = _floor(last, unit)
        while starts[-1] < end and len(starts) <= MAX_BUCKETS:
            starts.append(_step(starts[-1], unit))
        if len(starts) <= MAX_BUCKETS or unit == "month":
            return Buckets(unit, starts)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# The figures


@dataclass
class Chart:
    ident: str
    title: str
    svg: SafeString
    note: str = ""
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    wide: bool = False


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _pct(value: float | None) -> str:
    return "–" if value is None else charts.percent(value)


def _ranged(qs: QuerySet, column: str, f: QualityFilter) -> QuerySet:
    start, end = f.window()
    if start:
        qs = qs.filter(**{f"{column}__gte": start})
    if end:
        qs = qs.filter(**{f"{column}__lt": end})
    return qs


def _within(column: str, f: QualityFilter) -> Q:
    start, end = f.window()
    q = Q(**{f"{column}__isnull": False})
    if start:
        q &= Q(**{f"{column}__gte": start})
    if end:
        q &= Q(**{f"{column}__lt": end})
    return q


def _span(f: QualityFilter, querysets: list[tuple[QuerySet, tuple[str, ...]]]) -> tuple[datetime, datetime] | None:
    """The first and last moment of the data in range (one scan per table)."""
    start, end = f.window()
    if start and end:
        return start, end - timedelta(seconds=1)
    firsts, lasts = [], []
    for qs, columns in querysets:
        found = qs.aggregate(**{f"first_{i}": Min(c, filter=_within(c, f)) for i, c in enumerate(columns)},
                             **{f"last_{i}": Max(c, filter=_within(c, f)) for i, c in enumerate(columns)})
        for i in range(len(columns)):
            if found[f"first_{i}"] is not None:
                firsts.append(_normal(found[f"first_{i}"]))
                lasts.append(_normal(found[f"last_{i}"]))
    if not firsts:
        return None
    return (start or min(firsts)), (end - timedelta(seconds=1) if end else max(lasts))


def _svg(markup: str) -> SafeString:
    # charts.py escapes every text it writes (tests/tasks/test_quality.py checks it); the markup is ours.
    return mark_safe(markup)  # noqa: S308


def quality_page(f: QualityFilter) -> dict[str, Any]:
    """Everything the quality page shows, for a filter."""
    domains = Domain.objects.all()
    tasks = Task.objects.all()
    runs = Run.objects.exclude(termination=Run.Termination.RUNNING).exclude(reward=None)
    if f.backend:
        domains = domains.filter(backend=f.backend)
        tasks = tasks.filter(domain__backend=f.backend)
        runs = runs.filter(task__domain__backend=f.backend)
    span = _span(f, [(domains, ("created_at",)), (tasks, ("created_at", "reviewed_at")), (runs, ("created_at",))])
    waiting = waiting_for_review(tasks)
    if span is None:
        return {"buckets": None, "charts": [], "summary": [], "waiting": waiting, "empty": True}
    buckets = buckets_for(*span)
    ranged_domains = _ranged(domains, "created_at", f)
    ranged_tasks = _ranged(tasks, "created_at", f)
    ranged_runs = _ranged(runs, "created_at", f)
    synthesis = _synthesis_charts(buckets, ranged_domains)
    task_charts, task_totals = _task_charts(buckets, ranged_tasks)
    review = _review_charts(buckets, _ranged(tasks.filter(review_status__in=DECIDED), "reviewed_at", f), f)
    agents = _agent_chart(ranged_runs)
    throughput = _throughput_chart(buckets, ranged_domains, task_totals, ranged_runs)
    summary = synthesis.pop("summary") + task_charts.pop("summary") + review.pop("summary")
    summary.append({"label": "wait for review", "value": f"{waiting['counts'][ReviewStatus.PENDING] + waiting['counts'][ReviewStatus.IN_REVIEW]:,}",
                    "detail": f"{waiting['counts'][ReviewStatus.NEEDS_CHANGES]:,} need changes"})
    ordered = [synthesis["tools"], synthesis["shares"], task_charts["tasks"], task_charts["flags"], task_charts["kinds"],
               review["approval"], review["reasons"], agents, throughput]
    return {"buckets": buckets, "charts": ordered, "summary": summary, "waiting": waiting, "empty": False,
            "span": span}


def _synthesis_charts(buckets: Buckets, domains: QuerySet[Domain]) -> dict[str, Any]:
    tools = list(Tool.objects.filter(domain__in=domains).annotate(bucket=buckets.trunc("domain__created_at"))
                 .values("bucket").annotate(
                     first=Count("pk", filter=Q(status=Tool.Status.VERIFIED, repair_count=0)),
                     repaired=Count("pk", filter=Q(status=Tool.Status.VERIFIED, repair_count__gt=0)),
                     dropped=Count("pk", filter=~Q(status=Tool.Status.VERIFIED))).order_by())
    tests = list(ToolTest.objects.filter(tool__domain__in=domains).annotate(bucket=buckets.trunc("tool__domain__created_at"))
                 .values("bucket").annotate(total=Count("pk"), passed=Count(
                     "pk", filter=~Q(outcome=ToolTest.Outcome.UNEXPECTED_FAILURE))).order_by())
    edges = list(Dependency.objects.filter(domain__in=domains).annotate(bucket=buckets.trunc("domain__created_at"))
                 .values("bucket").annotate(total=Count("pk"), witnessed=Count("pk", filter=Q(witnessed=True))).order_by())
    first, repaired, dropped = (buckets.place(tools, lambda r, k=k: r[k]) for k in ("first", "repaired", "dropped"))
    tests_total, tests_passed = (buckets.place(tests, lambda r, k=k: r[k]) for k in ("total", "passed"))
    edges_total, edges_witnessed = (buckets.place(edges, lambda r, k=k: r[k]) for k in ("total", "witnessed"))
    labels = buckets.labels
    all_tools = sum(first) + sum(repaired) + sum(dropped)
    tools_chart = Chart(
        "chart-tools", "Tools: verified at first try, after repair, dropped",
        _svg(charts.bar_chart(
            ident="chart-tools", title="Tools: verified at first try, after repair, dropped",
            subtitle=f"{int(all_tools):,} tools · {_pct(_share(sum(first), all_tools))} verified at first try · "
                     f"by {buckets.unit} of synthesis",
            categories=labels, stacked=True, y_label="tools",
            series=[charts.Series("verified at first try", first, charts.GOOD),
                    charts.Series("verified after repair", repaired, charts.MIDDLE),
                    charts.Series("dropped (never passed)", dropped, charts.BAD)])),
        note="A tool is verified when all its procedural tests pass; failing tools go to repair, up to "
             "SCALEENV_REPAIR_ROUNDS rounds, and are dropped if they never pass.",
        headers=[buckets.unit, "first try", "after repair", "dropped"],
        rows=[[labels[i], f"{int(first[i]):,}", f"{int(repaired[i]):,}", f"{int(dropped[i]):,}"]
              for i in range(len(labels)) if first[i] or repaired[i] or dropped[i]])
    test_share = [_share(p, t) for p, t in zip(tests_passed, tests_total)]
    edge_share = [_share(w, t) for w, t in zip(edges_witnessed, edges_total)]
    shares_chart = Chart(
        "chart-synthesis", "Procedural tests passed and dependency edges witnessed",
        _svg(charts.line_chart(
            ident="chart-synthesis", title="Procedural tests passed and dependency edges witnessed",
            subtitle=f"{_pct(_share(sum(tests_passed), sum(tests_total)))} of {int(sum(tests_total)):,} tests passed · "
                     f"{_pct(_share(sum(edges_witnessed), sum(edges_total)))} of {int(sum(edges_total)):,} edges witnessed",
            categories=labels, y_max=1.0, value_format=charts.percent, y_label="share",
            series=[charts.Series("tests passed", test_share, charts.NEUTRAL),
                    charts.Series("edges witnessed", edge_share, charts.PALETTE[4])])),
        note="A test passes when its outcome is success or an anticipated rejection. An edge is witnessed "
             "when the source tool's real output, fed to the target, succeeded.",
        headers=[buckets.unit, "tests passed", "edges witnessed"],
        rows=[[labels[i], f"{int(tests_passed[i]):,}/{int(tests_total[i]):,} ({_pct(test_share[i])})",
               f"{int(edges_witnessed[i]):,}/{int(edges_total[i]):,} ({_pct(edge_share[i])})"]
              for i in range(len(labels)) if tests_total[i] or edges_total[i]])
    summary = [
        {"label": "tools verified at first try", "value": _pct(_share(sum(first), all_tools)),
         "detail": f"{int(sum(repaired)):,} after repair · {int(sum(dropped)):,} dropped"},
        {"label": "tests passed", "value": _pct(_share(sum(tests_passed), sum(tests_total))),
         "detail": f"of {int(sum(tests_total)):,}"},
        {"label": "edges witnessed", "value": _pct(_share(sum(edges_witnessed), sum(edges_total))),
         "detail": f"of {int(sum(edges_total)):,}"}]
    return {"tools": tools_chart, "shares": shares_chart, "summary": summary}


def _task_charts(buckets: Buckets, tasks: QuerySet[Task]) -> tuple[dict[str, Any], list[float]]:
    rows = list(tasks.annotate(bucket=buckets.trunc("created_at")).values("bucket", "status", "kind")
                .annotate(n=Count("pk")).order_by())
    verified = buckets.place(rows, lambda r: r["n"] if r["status"] == Task.Status.VERIFIED else 0)
    flagged = buckets.place(rows, lambda r: r["n"] if r["status"] == Task.Status.FLAGGED else 0)
    refusals = buckets.place(rows, lambda r: r["n"] if r["kind"] == Task.Kind.REFUSAL else 0)
    questions = buckets.place(rows, lambda r: r["n"] if r["kind"] == Task.Kind.QUESTION else 0)
    totals = [v + f for v, f in zip(verified, flagged)]
    labels = buckets.labels
    made = sum(totals)
    tasks_chart = Chart(
        "chart-tasks", "Tasks: verified and flagged",
        _svg(charts.bar_chart(
            ident="chart-tasks", title="Tasks: verified and flagged", stacked=True, y_label="tasks",
            subtitle=f"{int(made):,} tasks · {_pct(_share(sum(verified), made))} verified · by {buckets.unit} made",
            categories=labels, series=[charts.Series("verified", verified, charts.GOOD),
                                       charts.Series("flagged by an audit", flagged, charts.BAD)])),
        note="A task is verified when no reward audit flags it (tasks/audit.py).",
        headers=[buckets.unit, "verified", "flagged", "share verified"],
        rows=[[labels[i], f"{int(verified[i]):,}", f"{int(flagged[i]):,}", _pct(_share(verified[i], totals[i]))]
              for i in range(len(labels)) if totals[i]])
    # Flags are a JSON list per task; only flagged tasks have any. One column of those rows is read.
    codes: Counter[str] = Counter()
    for flags in tasks.filter(status=Task.Status.FLAGGED).values_list("audit_flags", flat=True).iterator(chunk_size=2000):
        codes.update({f.get("code", "?") for f in flags or [] if isinstance(f, dict)})
    ranked = codes.most_common()
    flags_chart = Chart(
        "chart-flags", "Audit flags by kind",
        _svg(charts.hbar_chart(
            ident="chart-flags", title="Audit flags by kind", x_label="flagged tasks",
            subtitle=f"{int(sum(flagged)):,} flagged tasks (a task may carry several flags)",
            labels=[c.replace("_", " ") for c, _ in ranked],
            series=[charts.Series("tasks", [n for _, n in ranked], charts.BAD)], empty="No flagged task in this range")),
        note="Each flag blocks verification; docs/decisions.md (Audits) says what each one means.",
        headers=["flag", "tasks"], rows=[[c, f"{n:,}"] for c, n in ranked])
    refusal_share = [_share(r, t) for r, t in zip(refusals, totals)]
    question_share = [_share(q, t) for q, t in zip(questions, totals)]
    kinds_chart = Chart(
        "chart-kinds", "Refusal and read-only (question) tasks",
        _svg(charts.line_chart(
            ident="chart-kinds", title="Refusal and read-only (question) tasks", y_max=1.0,
            subtitle=f"refusals {_pct(_share(sum(refusals), made))} · questions {_pct(_share(sum(questions), made))} "
                     f"of {int(made):,} tasks",
            categories=labels, value_format=charts.percent, y_label="share of tasks made",
            series=[charts.Series("refusals", refusal_share, charts.BAD, counts=totals),
                    charts.Series("questions (read-only)", question_share, charts.NEUTRAL, counts=totals)])),
        note="A refusal task is passed by refusing with the policy's reason; a question task changes nothing and "
             "is passed by telling the user the answer.",
        headers=[buckets.unit, "refusals", "questions", "tasks"],
        rows=[[labels[i], f"{int(refusals[i]):,} ({_pct(refusal_share[i])})",
               f"{int(questions[i]):,} ({_pct(question_share[i])})", f"{int(totals[i]):,}"]
              for i in range(len(labels)) if totals[i]])
    summary = [{"label": "tasks verified", "value": _pct(_share(sum(verified), made)), "detail": f"of {int(made):,}"}]
    return {"tasks": tasks_chart, "flags": flags_chart, "kinds": kinds_chart, "summary": summary}, totals


def _review_charts(buckets: Buckets, decided: QuerySet[Task], f: QualityFilter) -> dict[str, Any]:
    rows = list(decided.annotate(bucket=buckets.trunc("reviewed_at")).values("bucket", "review_status")
                .annotate(n=Count("pk")).order_by())
    per = {s: buckets.place(rows, lambda r, s=s: r["n"] if r["review_status"] == s else 0) for s in DECIDED}
    totals = [sum(column) for column in zip(*per.values())]
    rate = [_share(a, t) for a, t in zip(per[ReviewStatus.APPROVED], totals)]
    labels = buckets.labels
    approved, all_decided = sum(per[ReviewStatus.APPROVED]), sum(totals)
    approval = Chart(
        "chart-approval", "Approval rate",
        _svg(charts.line_chart(
            ident="chart-approval", title="Approval rate", y_max=1.0, value_format=charts.percent,
            subtitle=f"{_pct(_share(approved, all_decided))} of {int(all_decided):,} decided tasks approved · "
                     f"by {buckets.unit} of decision",
            categories=labels, y_label="approved / decided",
            series=[charts.Series("approved", rate, charts.GOOD, counts=totals)], empty="No task decided in this range")),
        note="Decided tasks are approved, rejected or sent back for changes; each is counted once, by its current "
             "review status and when it was decided.",
        headers=[buckets.unit, "approved", "rejected", "needs changes", "approval rate"],
        rows=[[labels[i], f"{int(per[ReviewStatus.APPROVED][i]):,}", f"{int(per[ReviewStatus.REJECTED][i]):,}",
               f"{int(per[ReviewStatus.NEEDS_CHANGES][i]):,}", _pct(rate[i])] for i in range(len(labels)) if totals[i]])
    events = _ranged(ReviewEvent.objects.filter(to_status=ReviewStatus.REJECTED), "at", f)
    if f.backend:
        events = events.filter(task__domain__backend=f.backend)
    reasons: Counter[str] = Counter()
    rejections = 0
    for codes in events.values_list("reasons", flat=True).iterator(chunk_size=2000):
        rejections += 1
        reasons.update(c for c in codes or [] if isinstance(c, str))
    names = dict(RejectionReason.objects.values_list("code", "label"))
    ranked = reasons.most_common()
    reasons_chart = Chart(
        "chart-reasons", "Rejection reasons",
        _svg(charts.hbar_chart(
            ident="chart-reasons", title="Rejection reasons", x_label="rejections citing it",
            subtitle=f"{rejections:,} rejections (a rejection may give several reasons)",
            labels=[names.get(c, c) for c, _ in ranked],
            series=[charts.Series("rejections", [n for _, n in ranked], charts.BAD)],
            empty="No rejection in this range")),
        note="From the review events that moved a task to rejected, by when they happened.",
        headers=["reason", "code", "rejections"], rows=[[names.get(c, c), c, f"{n:,}"] for c, n in ranked])
    summary = [{"label": "approval rate", "value": _pct(_share(approved, all_decided)),
                "detail": f"of {int(all_decided):,} decided"}]
    return {"approval": approval, "reasons": reasons_chart, "summary": summary}


def _agent_chart(runs: QuerySet[Run]) -> Chart:
    rows = list(runs.values("agent").annotate(n=Count("pk"), mean=Avg("reward"),
                                              passed=Count("pk", filter=Q(reward=1.0))).order_by("-n", "agent"))
    labels = [r["agent"] for r in rows]
    return Chart(
        "chart-agents", "Agent rewards by kind",
        _svg(charts.bar_chart(
            ident="chart-agents", title="Agent rewards by kind", y_max=1.0, value_format=charts.percent,
            subtitle=f"{sum(r['n'] for r in rows):,} finished episodes", categories=labels, y_label="reward",
            x_label="agent",
            series=[charts.Series("mean reward", [r["mean"] or 0.0 for r in rows], charts.NEUTRAL),
                    charts.Series("episodes with reward 1", [r["passed"] / r["n"] for r in rows], charts.GOOD)],
            empty="No finished episode in this range")),
        note="The oracle plays the gold chain through the simulated user, so it should earn 1; the perturbed, null "
             "and random agents should not (a high reward there means the reward is too lenient).",
        headers=["agent", "episodes", "mean reward", "reward 1"],
        rows=[[r["agent"], f"{r['n']:,}", f"{r['mean'] or 0:.3f}", _pct(r["passed"] / r["n"])] for r in rows])


def _throughput_chart(buckets: Buckets, domains: QuerySet[Domain], task_totals: list[float], runs: QuerySet[Run]) -> Chart:
    made_domains = buckets.place(list(domains.annotate(bucket=buckets.trunc("created_at")).values("bucket")
                                      .annotate(n=Count("pk")).order_by()), lambda r: r["n"])
    made_runs = buckets.place(list(runs.annotate(bucket=buckets.trunc("created_at")).values("bucket")
                                   .annotate(n=Count("pk")).order_by()), lambda r: r["n"])
    seconds = domains.aggregate(mean=Avg("seconds"))["mean"]
    run_seconds = runs.aggregate(mean=Avg("seconds"))["mean"]
    labels = buckets.labels
    subtitle = "per " + buckets.unit
    if seconds:
        subtitle += f" · {seconds:.1f} s per domain"
    if run_seconds:
        subtitle += f" · {run_seconds * 1000:.0f} ms per episode"
    return Chart(
        "chart-throughput", "Throughput: domains, tasks and episodes made",
        _svg(charts.bar_chart(
            ident="chart-throughput", title="Throughput: domains, tasks and episodes made", subtitle=subtitle,
            categories=labels, y_label="made",
            series=[charts.Series("domains", made_domains, charts.PALETTE[0]),
                    charts.Series("tasks", task_totals, charts.PALETTE[1]),
                    charts.Series("episodes", made_runs, charts.PALETTE[2])])),
        note="Per batch rates (items per second of wall time) are on the Batches page.",
        headers=[buckets.unit, "domains", "tasks", "episodes"],
        rows=[[labels[i], f"{int(made_domains[i]):,}", f"{int(task_totals[i]):,}", f"{int(made_runs[i]):,}"]
              for i in range(len(labels)) if made_domains[i] or task_totals[i] or made_runs[i]])


# ---------------------------------------------------------------------------------------------
# What waits for review (now)


def _fold(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, int]]:
    """Counts per ``key`` and review status, an expired lease counted as pending (as the queue does)."""
    out: dict[Any, dict[str, int]] = {}
    for row in rows:
        counts = out.setdefault(row[key], {s: 0 for s in ReviewStatus.values})
        if row["review_status"] == ReviewStatus.IN_REVIEW:
            counts[ReviewStatus.IN_REVIEW] += row["live"]
            counts[ReviewStatus.PENDING] += row["n"] - row["live"]
        else:
            counts[row["review_status"]] += row["n"]
    return out


def waiting_for_review(tasks: QuerySet[Task], domain_rows: int = 25) -> dict[str, Any]:
    now = timezone.now()
    live = Count("pk", filter=Q(lease_expires_at__gt=now))
    by_queue = _fold(list(tasks.values("queue__name", "review_status").annotate(n=Count("pk"), live=live)
                          .order_by()), "queue__name")
    counts = {s: sum(c[s] for c in by_queue.values()) for s in ReviewStatus.values}
    by_domain = _fold(list(tasks.filter(review_status__in=WAITING).values("domain__slug", "review_status")
                           .annotate(n=Count("pk"), live=live).order_by()), "domain__slug")
    names = dict(Domain.objects.filter(slug__in=list(by_domain)).values_list("slug", "name")) if by_domain else {}
    domains = sorted(({"slug": slug, "name": names.get(slug, slug), **c,
                       "waiting": c[ReviewStatus.PENDING] + c[ReviewStatus.IN_REVIEW] + c[ReviewStatus.NEEDS_CHANGES]}
                      for slug, c in by_domain.items()), key=lambda d: (-d["waiting"], d["name"]))
    queues = sorted(by_queue.items(), key=lambda kv: (kv[0] is not None, kv[0] or ""))
    queue_labels = [name or "default queue" for name, _ in queues]
    chart = _svg(charts.hbar_chart(
        ident="chart-waiting", title="What waits for review, by queue",
        subtitle=f"{counts[ReviewStatus.PENDING]:,} pending · {counts[ReviewStatus.IN_REVIEW]:,} in review · "
                 f"{counts[ReviewStatus.NEEDS_CHANGES]:,} need changes (now)",
        labels=queue_labels, x_label="tasks",
        series=[charts.Series("pending", [c[ReviewStatus.PENDING] for _, c in queues], charts.PALETTE[5]),
                charts.Series("in review", [c[ReviewStatus.IN_REVIEW] for _, c in queues], charts.MIDDLE),
                charts.Series("needs changes", [c[ReviewStatus.NEEDS_CHANGES] for _, c in queues], charts.BAD)],
        empty="Nothing waits for review"))
    return {"counts": counts, "chart": chart, "domains": domains[:domain_rows], "more_domains": max(0, len(domains) - domain_rows),
            "total": sum(counts.values())}
