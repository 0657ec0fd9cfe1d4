"""HTML views (thin: parse, call a selector, render)."""

from __future__ import annotations

from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.contrib.auth.decorators import login_not_required, permission_required
from django.views.decorators.http import require_GET

from . import selectors
from .models import Batch, Domain, Tool


@require_GET
@permission_required("environments.view_tooltest", raise_exception=True)
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "environments/dashboard.html",
                  {"domains": selectors.domain_list(), "batches": selectors.recent_batches()})


@require_GET
@permission_required("environments.view_tooltest", raise_exception=True)
def batch_progress(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(Batch, pk=pk)
    return render(request, "environments/_batch_progress.html", {"batch": batch})


@require_GET
@permission_required("environments.view_tooltest", raise_exception=True)
def domain_detail(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        domain = selectors.domain_detail(slug)
    except Domain.DoesNotExist:
        raise Http404("no such domain") from None
    return render(request, "environments/domain_detail.html", {
        "domain": domain, "tools": list(selectors.domain_tools(domain)), "tables": domain.tables.all(),
        "graph": selectors.graph_elements(domain), "test_counts": selectors.test_outcome_counts(domain)})


@require_GET
@permission_required("environments.view_tooltest", raise_exception=True)
def domain_graph(request: HttpRequest, slug: str) -> JsonResponse:
    domain = get_object_or_404(Domain, slug=slug)
    return JsonResponse(selectors.graph_elements(domain))


@require_GET
@permission_required("environments.view_tooltest", raise_exception=True)
def tool_detail(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    domain = get_object_or_404(Domain.objects.only("id", "name", "slug"), slug=slug)
    try:
        tool = selectors.tool_detail(domain, name)
    except Tool.DoesNotExist:
        raise Http404("no such tool") from None
    return render(request, "environments/tool_detail.html", {
        "domain": domain, "tool": tool, "tests": list(tool.tests.all()), **selectors.tool_edges(tool)})


@require_GET
@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
