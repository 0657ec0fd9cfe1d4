"""HTML views (thin: parse, call a selector, render)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required, permission_required
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from . import selectors
from .models import Batch, Dependency, Domain, Tool


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
    tools = list(selectors.domain_tools(domain))
    selectors.warm_graph_layout(domain, tools)
    return render(request, "environments/domain_detail.html", {
        "domain": domain, "tools": tools, "tables": domain.tables.all(),
        "graph_url": reverse("environments:domain-graph", args=[domain.slug]),
        "highlight": graph_highlight(request), "test_counts": selectors.test_outcome_counts(domain)})


# --- The dependency graph widget (issue 9, item 5): its JSON and its side panels ---------------------

def graph_highlight(request: HttpRequest) -> dict[str, list[str]]:
    """`?h=a,b&chain=x,y`: tool names to highlight (a task's subgraph H) and a chain to draw in order."""
    def names(key: str) -> list[str]:
        return [n.strip()[:120] for n in request.GET.get(key, "").split(",") if n.strip()][:500]

    return {"h": names("h"), "chain": names("chain")}


@require_GET
@permission_required("environments.view_tooltest", raise_exception=True)
def domain_graph(request: HttpRequest, slug: str) -> JsonResponse:
    try:
        domain = selectors.graph_domain(slug)
    except Domain.DoesNotExist:
        raise Http404("no such domain") from None
    node_url = reverse("environments:tool-graph-panel", args=[slug, 0])[:-2]
    edge_url = reverse("environments:dependency-graph-panel", args=[slug, 0])[:-2]
    return JsonResponse(selectors.graph_payload(domain, selectors.graph_aspect(request.GET.get("aspect")),
                                                node_url, edge_url))


@require_GET
@permission_required("environments.view_tooltest", raise_exception=True)
def graph_tool_panel(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    try:
        context = selectors.graph_tool_panel(slug, pk)
    except Tool.DoesNotExist:
        raise Http404("no such tool") from None
    return render(request, "environments/_graph_tool_panel.html", context)


@require_GET
@permission_required("environments.view_tooltest", raise_exception=True)
def graph_edge_panel(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    try:
        context = selectors.graph_edge_panel(slug, pk)
    except Dependency.DoesNotExist:
        raise Http404("no such edge") from None
    return render(request, "environments/_graph_edge_panel.html", context)


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
