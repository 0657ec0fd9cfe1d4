"""HTML views of tasks and runs (thin: parse, call a selector, render)."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from . import selectors
from .api import visible_runs
from .models import Task


TASKS_PER_PAGE = 50


@require_GET
@permission_required("tasks.view_task", raise_exception=True)
def task_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or None
    domain = request.GET.get("domain") or None
    page = Paginator(selectors.task_list(status, domain), TASKS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "tasks/task_list.html", {"page": page, "tasks": page.object_list, "status": status,
                                                    "domain": domain})


@require_GET
@permission_required("tasks.view_task", raise_exception=True)
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(Task.objects.select_related("domain").defer(
        "domain__fixture", "domain__layout", "domain__stages", "domain__sandbox", "domain__notes"), pk=pk)
    return render(request, "tasks/task_detail.html", selectors.task_page(task))


@require_GET
@permission_required("tasks.view_run", raise_exception=True)
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    # Another account's HTTP session is not found (not forbidden): its existence is private too.
    run = get_object_or_404(visible_runs(request.user).select_related("task").only(
        "id", "task_id", "agent", "agent_model", "user", "trial", "seed", "reward", "breakdown", "termination",
        "tool_errors", "seconds", "final_hash", "step_count", "owner_id", "task__id"), pk=pk)
    return render(request, "tasks/run_detail.html", {"run": run, "task": run.task, "steps": selectors.run_steps(run)})
