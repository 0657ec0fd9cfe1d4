"""HTML views of tasks and runs (thin: parse, call a selector, render)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from . import selectors
from .models import Run, Task


@require_GET
def task_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or None
    domain = request.GET.get("domain") or None
    tasks = selectors.task_list(status, domain)
    return render(request, "tasks/task_list.html", {"tasks": tasks[:500], "count": tasks.count(), "status": status,
                                                    "domain": domain})


@require_GET
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(Task.objects.select_related("domain"), pk=pk)
    return render(request, "tasks/task_detail.html", selectors.task_page(task))


@require_GET
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(Run.objects.select_related("task", "task__domain"), pk=pk)
    return render(request, "tasks/run_detail.html", {"run": run, "task": run.task})
