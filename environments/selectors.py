"""Reads for the environments app."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db.models import Count, Q, QuerySet

from environments.runtime.probes import sandbox_status

from .models import Batch, Dependency, Domain, Tool, ToolTest


def sandbox_warning() -> str | None:
    """The degraded-sandbox warning of this process (self-test run once, then cached)."""
    from .services import sandbox_config

    return sandbox_status(sandbox_config()).warning()


# Large JSON columns a list never shows.
DOMAIN_HEAVY = ("fixture", "layout", "stages", "sandbox", "notes", "policy")


def domain_list() -> QuerySet[Domain]:
    return Domain.objects.defer(*DOMAIN_HEAVY).annotate(
        tool_count=Count("tools", distinct=True),
        verified_count=Count("tools", filter=Q(tools__status=Tool.Status.VERIFIED), distinct=True),
    ).order_by("name")


def recent_batches(limit: int = 10) -> QuerySet[Batch]:
    return Batch.objects.order_by("-created_at")[:limit]


def domain_detail(slug: str) -> Domain:
    return Domain.objects.defer("fixture", "stages", "sandbox").prefetch_related("tables").get(slug=slug)


def domain_tools(domain: Domain) -> QuerySet[Tool]:
    return domain.tools.only("id", "domain_id", "name", "kind", "status", "repair_count", "failure_reason").annotate(
        test_count=Count("tests"),
        passed_count=Count("tests", filter=~Q(tests__outcome=ToolTest.Outcome.UNEXPECTED_FAILURE)),
    ).order_by("status", "name")


def graph_elements(domain: Domain) -> dict[str, Any]:
    """Cytoscape elements: verified tools as nodes with cached positions, edges styled by kind."""
    tools = list(domain.tools.filter(status=Tool.Status.VERIFIED).values("id", "name", "kind", "mutates"))
    layout = domain.layout or {}
    nodes = [{"data": {"id": str(t["id"]), "label": t["name"], "kind": t["kind"], "mutates": t["mutates"]},
              "position": layout.get(t["name"], {"x": 0, "y": 0})} for t in tools]
    edges = [{"data": {"id": f"e{d['id']}", "source": str(d["src_id"]), "target": str(d["dst_id"]),
                       "kind": _primary_kind(d["kinds"]), "kinds": " ".join(d["kinds"]),
                       "witnessed": "yes" if d["witnessed"] else "no"}}
             for d in domain.dependencies.values("id", "src_id", "dst_id", "kinds", "witnessed")]
    return {"nodes": nodes, "edges": edges}


def _primary_kind(kinds: list[str]) -> str:
    for kind in ("data_flow", "pre_post", "shared_state"):
        if kind in kinds:
            return kind
    return "shared_state"


def tool_detail(domain: Domain, name: str) -> Tool:
    return domain.tools.get(name=name)


def tool_edges(tool: Tool) -> dict[str, list[Dependency]]:
    edges = Dependency.objects.select_related("src", "dst").only("kinds", "witnessed", "src__name", "dst__name")
    return {"incoming": list(edges.filter(dst=tool)), "outgoing": list(edges.filter(src=tool))}


def test_outcome_counts(domain: Domain) -> dict[str, int]:
    counts = Counter(ToolTest.objects.filter(tool__domain=domain).values_list("outcome", flat=True))
    return {o: counts.get(o, 0) for o in ToolTest.Outcome.values}


def description_figures(domain_ids: list[int]) -> dict[str, int]:
    """How well a batch's domains explain themselves: distinct descriptions (the domain's own name
    set aside), tools described beyond their name, domains with a policy."""
    domains = list(Domain.objects.filter(pk__in=domain_ids).values_list("name", "description", "policy"))
    descriptions = {description.replace(name, "<name>").strip() for name, description, _policy in domains}
    tools = list(Tool.objects.filter(domain_id__in=domain_ids).values_list("name", "description"))
    described = sum(1 for name, text in tools
                    if len(text.split()) > len(name.split("_")) + 3 and text.lower().strip(". ") != name.replace("_", " "))
    return {"descriptions_distinct": len(descriptions), "tools_described": described, "tools": len(tools),
            "policies": sum(1 for _n, _d, policy in domains if policy.strip())}
