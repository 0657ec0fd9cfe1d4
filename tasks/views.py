"""HTML views of tasks and runs (thin: parse, call a selector, render)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from . import selectors
from .models import Run, Task


TASKS_PER_PAGE = 50


@require_GET
def task_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or None
    domain = request.GET.get("domain") or None
    page = Paginator(selectors.task_list(status, domain), TASKS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "tasks/task_list.html", {"page": page, "tasks": page.object_list, "status": status,
                                                    "domain": domain})


@require_GET
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(Task.objects.select_related("domain").defer(
        "domain__fixture", "domain__layout", "domain__stages", "domain__sandbox", "domain__notes"), pk=pk)
    return render(request, "tasks/task_detail.html", selectors.task_page(task))


@require_GET
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(Run.objects.select_related("task").defer("final_state").only(
        "id", "task_id", "agent", "agent_model", "user", "trial", "seed", "messages", "steps", "reward", "breakdown",
        "termination", "tool_errors", "seconds", "final_hash", "task__id"), pk=pk)
    return render(request, "tasks/run_detail.html", {"run": run, "task": run.task})
