"""Quality over time: the SVG charts (titles, axes, legends, escaping), the figures behind them
(checked against the rows), the date range and backend filters, what waits for review, and a
bounded number of queries."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.utils import timezone

from environments import batches
from environments.models import Dependency, Domain, Tool, ToolTest
from tasks import charts, quality, services
from tasks.models import RejectionReason, ReviewEvent, ReviewQueue, Run, Task
from tests.conftest import page_client
from tests.tasks.conftest import stored_tasks

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def texts(svg: str) -> list[str]:
    return [t.text or "" for t in parse(svg).iter(f"{SVG}text")]


# ---------------------------------------------------------------------------------------------
# The chart module (no database)


def test_a_bar_chart_has_a_title_legend_axes_and_a_tooltip_per_bar():
    svg = charts.bar_chart(ident="c1", title="Tools", subtitle="by day", categories=["Mar 01", "Mar 02"],
                           stacked=True, y_label="tools", x_label="day",
                           series=[charts.Series("first try", [3, 5]), charts.Series("after repair", [1, 0])])
    root = parse(svg)
    words = texts(svg)
    assert root.find(f"{SVG}title").text == "Tools"
    assert {"Tools", "by day", "first try", "after repair", "tools", "day", "Mar 01", "Mar 02"} <= set(words)
    assert {"0", "1", "2", "3", "4", "5"} <= set(words)  # y ticks up to the tallest stack (5)
    tips = [t.text for t in root.iter(f"{SVG}title")][1:]
    assert tips == ["first try · Mar 01: 3", "after repair · Mar 01: 1", "first try · Mar 02: 5"]
    assert "style=" not in svg and "<script" not in svg


def test_every_text_is_escaped():
    evil = '<script>alert(1)</script>" onload="x'
    for svg in (charts.bar_chart(ident="e", title=evil, categories=[evil], series=[charts.Series(evil, [1])]),
                charts.line_chart(ident="e", title=evil, categories=[evil, "b"], series=[charts.Series(evil, [0.5, 1])]),
                charts.hbar_chart(ident="e", title=evil, labels=[evil], series=[charts.Series(evil, [2])])):
        parse(svg)
        assert "<script>" not in svg and '" onload="' not in svg and "&lt;script&gt;" in svg


def test_empty_and_single_point_charts_say_so_or_draw_a_dot():
    empty = charts.line_chart(ident="l", title="Rate", categories=["a", "b"], series=[charts.Series("x", [None, None])])
    assert "Nothing in this range" in texts(empty)
    one = charts.line_chart(ident="l", title="Rate", categories=["a"], series=[charts.Series("x", [0.5])],
                            y_max=1.0, value_format=charts.percent)
    root = parse(one)
    assert len(list(root.iter(f"{SVG}circle"))) == 1 and not list(root.iter(f"{SVG}polyline"))
    assert {"0%", "20%", "40%", "60%", "80%", "100%"} <= set(texts(one))
    assert "No flags" in texts(charts.hbar_chart(ident="h", title="Flags", labels=[], series=[charts.Series("n", [])],
                                                 empty="No flags"))


def test_a_rate_line_breaks_where_a_bucket_has_no_data_and_each_point_names_its_n():
    # Days 1-2 decided, day 3 nothing, days 4-5 decided: two separate lines, never one across day 3.
    svg = charts.line_chart(ident="r", title="Approval rate", categories=["d1", "d2", "d3", "d4", "d5"],
                            y_max=1.0, value_format=charts.percent,
                            series=[charts.Series("approved", [0.5, 1.0, None, 0.0, 0.75], counts=[2, 1, 0, 1, 40])])
    root = parse(svg)
    lines = [p.get("points").split() for p in root.iter(f"{SVG}polyline")]
    assert [len(points) for points in lines] == [2, 2]
    tips = [t.text for c in root.iter(f"{SVG}circle") for t in c.iter(f"{SVG}title")]
    assert tips == ["approved · d1: 50% (n = 2)", "approved · d2: 100% (n = 1)", "approved · d4: 0% (n = 1)",
                    "approved · d5: 75% (n = 40)"]
    assert {"n=2", "n=1", "n=40"} <= set(texts(svg))
    # A rate from a handful of items is drawn hollow; one from many is filled.
    fills = [c.get("fill") for c in root.iter(f"{SVG}circle")]
    assert fills[:3] == ["#ffffff"] * 3 and fills[3] != "#ffffff"
    # Without counts the chart still works, with no n anywhere.
    plain = charts.line_chart(ident="p", title="x", categories=["a", "b"], series=[charts.Series("x", [0.2, 0.4])])
    assert not any(w.startswith("n=") for w in texts(plain)) and "(n = " not in plain


def test_long_horizontal_lists_are_cut_into_the_top_rows_and_the_rest():
    labels = [f"reason {i}" for i in range(30)]
    svg = charts.hbar_chart(ident="h", title="Reasons", labels=labels, series=[charts.Series("n", list(range(30, 0, -1)))],
                            max_rows=10)
    words = texts(svg)
    assert "reason 8" in words and "reason 9" not in words and "21 other" in words
    assert str(sum(range(1, 22))) in words  # the other rows summed


def test_buckets_are_the_finest_unit_that_fits():
    start = datetime(2026, 3, 2, 9, 30, tzinfo=dt_timezone.utc)
    assert quality.buckets_for(start, start + timedelta(hours=5)).unit == "hour"
    days = quality.buckets_for(start, start + timedelta(days=10))
    assert days.unit == "day" and len(days.starts) == 11 and days.labels[0] == "Mar 02"
    assert quality.buckets_for(start, start + timedelta(days=200)).unit == "week"
    months = quality.buckets_for(start, start + timedelta(days=1100))
    assert months.unit == "month" and months.starts[1] == datetime(2026, 4, 1, tzinfo=dt_timezone.utc)


# ---------------------------------------------------------------------------------------------
# The figures (database)


@pytest.fixture
def made():
    """A domain with tasks, oracle and null episodes, and a few review decisions over three days."""
    tasks = stored_tasks(seed=21, per_domain=6)
    for agent in ("oracle", "null"):
        rollout, _ = services.start_rollout_batch(agent=agent, which="all", trials=1)
        for item in rollout.items.all():
            batches.run_item(item.pk, worker="test")
    reason, _ = RejectionReason.objects.update_or_create(code="leaked-answer", defaults={
        "label": "Leaked <answer>", "source": "task"})
    RejectionReason.objects.update_or_create(code="other", defaults={"label": "Other", "source": "task"})
    now = timezone.now()
    decisions = [("approved", 0), ("approved", 1), ("rejected", 1), ("needs_changes", 2)]
    for task, (status, days_ago) in zip(tasks, decisions):
        at = now - timedelta(days=days_ago)
        Task.objects.filter(pk=task.pk).update(review_status=status, reviewed_at=at)
        if status == "rejected":
            event = ReviewEvent.objects.create(task=task, action="reject", from_status="in_review", to_status="rejected",
                                               reasons=[reason.code, "other"])
            ReviewEvent.objects.filter(pk=event.pk).update(at=at)
    return tasks


def _chart(page: dict, ident: str) -> quality.Chart:
    return next(c for c in page["charts"] if c.ident == ident)


database = pytest.mark.django_db(transaction=True)


@database
def test_the_figures_are_the_rows_counted(made):
    page = quality.quality_page(quality.QualityFilter())
    tools = Tool.objects.all()
    first = tools.filter(status="verified", repair_count=0).count()
    tools_rows = _chart(page, "chart-tools").rows
    assert sum(int(r[1].replace(",", "")) for r in tools_rows) == first
    summary = {s["label"]: s for s in page["summary"]}
    assert summary["tools verified at first try"]["value"] == charts.percent(first / tools.count())
    passed = ToolTest.objects.exclude(outcome="unexpected_failure").count()
    assert summary["tests passed"]["value"] == charts.percent(passed / ToolTest.objects.count())
    witnessed = Dependency.objects.filter(witnessed=True).count()
    assert summary["edges witnessed"]["value"] == charts.percent(witnessed / Dependency.objects.count())
    verified = Task.objects.filter(status="verified").count()
    assert summary["tasks verified"]["value"] == charts.percent(verified / Task.objects.count())
    assert summary["approval rate"]["value"] == "50%" and summary["approval rate"]["detail"] == "of 4 decided"
    agents = {r[0]: r for r in _chart(page, "chart-agents").rows}
    oracle_runs = Run.objects.filter(agent="oracle")
    assert agents["oracle"][1] == str(oracle_runs.count())
    assert float(agents["oracle"][2]) == pytest.approx(sum(r.reward for r in oracle_runs) / oracle_runs.count(), abs=1e-3)
    assert agents["null"][3] == charts.percent(Run.objects.filter(agent="null", reward=1.0).count()
                                               / Run.objects.filter(agent="null").count())
    assert _chart(page, "chart-reasons").rows == [["Leaked <answer>", "leaked-answer", "1"], ["Other", "other", "1"]]
    refusals = Task.objects.filter(kind="refusal").count()
    kinds_rows = _chart(page, "chart-kinds").rows
    assert sum(int(r[1].split(" ")[0]) for r in kinds_rows) == refusals
    flags = _chart(page, "chart-flags")
    flagged_codes = {f["code"] for t in Task.objects.filter(status="flagged") for f in t.audit_flags}
    assert {r[0] for r in flags.rows} == flagged_codes
    made_rows = _chart(page, "chart-throughput").rows
    assert sum(int(r[2]) for r in made_rows) == Task.objects.count()
    assert sum(int(r[3]) for r in made_rows) == Run.objects.count()


@database
def test_the_date_range_and_the_backend_filter_what_is_counted(made):
    old = Task.objects.order_by("pk").first()
    Task.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=20))
    today = timezone.now().date()
    page = quality.quality_page(quality.QualityFilter(since=today - timedelta(days=3), until=today))
    assert page["buckets"].unit == "day" and len(page["buckets"].starts) == 4  # 96 hours would be too many
    made_tasks = sum(int(r[1].replace(",", "")) + int(r[2].replace(",", "")) for r in _chart(page, "chart-tasks").rows)
    assert made_tasks == Task.objects.count() - 1
    whole = quality.quality_page(quality.QualityFilter())
    assert whole["buckets"].unit == "day" and len(whole["buckets"].starts) == 21
    nothing = quality.quality_page(quality.QualityFilter(backend="llm"))
    assert nothing["empty"] and nothing["charts"] == [] and nothing["waiting"]["total"] == 0


@database
def test_what_waits_for_review_counts_an_expired_lease_as_pending_and_groups_by_queue_and_domain(made):
    queue = ReviewQueue.objects.create(name="Second <look>", slug="second")
    first, second = Task.objects.filter(review_status="pending").order_by("pk")[:2]
    Task.objects.filter(pk=first.pk).update(review_status="in_review", lease_expires_at=timezone.now() - timedelta(minutes=1))
    Task.objects.filter(pk=second.pk).update(review_status="in_review", lease_expires_at=timezone.now() + timedelta(minutes=5),
                                             queue=queue)
    waiting = quality.waiting_for_review(Task.objects.all())
    pending = Task.objects.filter(review_status="pending").count() + 1
    assert waiting["counts"]["pending"] == pending and waiting["counts"]["in_review"] == 1
    assert waiting["counts"]["needs_changes"] == 1 and waiting["total"] == Task.objects.count()
    domain = Domain.objects.get()
    assert waiting["domains"] == [{"slug": domain.slug, "name": domain.name, "pending": pending, "in_review": 1,
                                   "needs_changes": 1, "approved": 0, "rejected": 0, "waiting": pending + 2}]
    words = texts(waiting["chart"])
    assert "default queue" in words and "Second <look>" in words
    assert "Second &lt;look&gt;" in str(waiting["chart"])


@database
def test_the_page_renders_filters_and_escapes_and_is_bounded(made, django_assert_max_num_queries):
    client = page_client("Viewer")
    with django_assert_max_num_queries(4 + 22):
        response = client.get("/quality/")
    page = response.content.decode()
    assert response.status_code == 200
    for title in ("Tools: verified at first try, after repair, dropped", "Procedural tests passed and dependency edges",
                  "Tasks: verified and flagged", "Audit flags by kind", "Refusal and read-only (question) tasks",
                  "Approval rate", "Rejection reasons", "Agent rewards by kind", "Throughput", "What waits for review"):
        assert title in page, title
    assert "Leaked &lt;answer&gt;" in page and "Leaked <answer>" not in page
    assert page.count("<svg") == 10 and "style=" not in page.split("<main>")[1]
    assert f"/review/?domain={Domain.objects.get().slug}" in page
    bad = client.get("/quality/?since=2026-03-05&until=2026-03-01")
    assert bad.status_code == 200 and "The start date is after the end date." in bad.content.decode()
    assert "Nothing was made in this range" in client.get("/quality/?backend=llm").content.decode()
