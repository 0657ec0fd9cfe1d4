"""Reads for the environments app."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from django.db.models import Count, Q, QuerySet

from environments import graph as tdg
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
    return domain.tools.only("id", "domain_id", "name", "kind", "status", "repair_count", "failure_reason",
                             "mutates", "reads", "writes").annotate(
        test_count=Count("tests"),
        passed_count=Count("tests", filter=~Q(tests__outcome=ToolTest.Outcome.UNEXPECTED_FAILURE)),
    ).order_by("status", "name")


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


# --- The dependency graph widget (issue 9, item 5) ----------------------------------------------------

GRAPH_KINDS = ("data_flow", "pre_post", "shared_state")
_TOOL_GRAPH_FIELDS = ("id", "name", "kind", "status", "mutates", "reads", "writes")


def graph_aspect(raw: str | None) -> float:
    """The layout aspect (width / height) nearest to what the client asked for; 2.0 by default."""
    try:
        wanted = float(raw) if raw else 2.0
    except ValueError:
        wanted = 2.0
    if not wanted > 0:  # also NaN
        wanted = 2.0
    return min(tdg.ASPECTS, key=lambda a: abs(math.log(a / min(max(wanted, 0.2), 8.0))))


def _layout_inputs(tools: list[dict[str, Any]], deps: list[dict[str, Any]]) -> tuple[list[tdg.LayoutNode], list[tdg.Edge]]:
    nodes = [tdg.LayoutNode(t["name"], tdg.primary_table(t["name"], t["reads"] or [], t["writes"] or [], t["kind"]),
                            active=t["status"] == Tool.Status.VERIFIED) for t in tools]
    names = {t["id"]: t["name"] for t in tools}
    edges = [tdg.Edge(names[d["src_id"]], names[d["dst_id"]], list(d["kinds"]), d["evidence"] or {})
             for d in deps if d["src_id"] in names and d["dst_id"] in names]
    return nodes, edges


def _current_layout(domain: Domain, tools: list[dict[str, Any]], deps: list[dict[str, Any]], aspect: float) -> dict[str, Any]:
    """The cached layout for `aspect`, computed and stored on the domain row when missing or when the
    graph it was made from changed (a cache fill, not a change of data). Layouts for other aspects
    stay cached beside it while the graph is the same."""
    nodes, edges = _layout_inputs(tools, deps)
    digest = tdg.graph_hash(nodes, edges)
    cached = domain.layout if isinstance(domain.layout, dict) else {}
    key = str(aspect)
    same = cached.get("version") == tdg.LAYOUT_VERSION and cached.get("hash") == digest
    if same and key in cached.get("by_aspect", {}):
        return cached["by_aspect"][key]
    by_aspect = dict(cached.get("by_aspect", {})) if same else {}
    by_aspect[key] = tdg.readable_layout(nodes, edges, aspect)
    domain.layout = {"version": tdg.LAYOUT_VERSION, "hash": digest, "by_aspect": by_aspect}
    Domain.objects.filter(pk=domain.pk).update(layout=domain.layout)
    return by_aspect[key]


def _graph_tools(domain: Domain) -> list[dict[str, Any]]:
    return list(domain.tools.order_by("name").values(*_TOOL_GRAPH_FIELDS))


def _graph_deps(domain: Domain) -> list[dict[str, Any]]:
    return list(domain.dependencies.order_by("id").values("id", "src_id", "dst_id", "kinds", "witnessed", "evidence"))


def warm_graph_layout(domain: Domain, tools: list[Tool]) -> None:
    """Bring the domain's cached layout up to date from tools the page has already read (one query
    for the edges, one more when the cache was stale), so that the graph JSON asked for next is cheap."""
    rows = [{f: getattr(t, f) for f in _TOOL_GRAPH_FIELDS} for t in tools]
    _current_layout(domain, rows, _graph_deps(domain), graph_aspect(None))


def graph_domain(slug: str) -> Domain:
    return Domain.objects.only("id", "slug", "name", "layout").get(slug=slug)


def graph_payload(domain: Domain, aspect: float, node_url: str, edge_url: str) -> dict[str, Any]:
    """Everything the graph widget draws: tools as nodes at their cached positions, edges with their
    kinds and witnessing, table boxes, and the URL prefixes of the side panels (append an id and "/")."""
    tools = _graph_tools(domain)
    deps = _graph_deps(domain)
    layout = _current_layout(domain, tools, deps, aspect)
    positions, depth = layout["positions"], layout["depth"]
    nodes = []
    for t in tools:
        label = tdg.wrap_label(t["name"])
        node = tdg.LayoutNode(t["name"], "", label=label)
        nodes.append({"data": {
            "id": f"t{t['id']}", "pk": t["id"], "name": t["name"], "label": label, "w": node.width, "h": node.height,
            "kind": t["kind"], "status": t["status"], "mutates": t["mutates"], "depth": depth.get(t["name"], 0),
            "group": tdg.primary_table(t["name"], t["reads"] or [], t["writes"] or [], t["kind"])},
            "position": positions.get(t["name"], {"x": 0.0, "y": 0.0})})
    edges = [{"data": {"id": f"e{d['id']}", "pk": d["id"], "source": f"t{d['src_id']}", "target": f"t{d['dst_id']}",
                       "kinds": [k for k in GRAPH_KINDS if k in d["kinds"]], "kind": _primary_kind(d["kinds"]),
                       "witnessed": bool(d["witnessed"])}}
             for d in deps]
    groups = [{"data": {"id": f"g{i}", "label": g["name"], "w": g["width"], "h": g["height"], "tools": g["tools"]},
               "position": {"x": g["x"], "y": g["y"]}} for i, g in enumerate(layout["groups"])]
    by_kind = {k: sum(1 for d in deps if k in d["kinds"]) for k in GRAPH_KINDS}
    return {"domain": domain.slug, "nodes": nodes, "edges": edges, "groups": groups,
            "size": {"width": layout["width"], "height": layout["height"]}, "aspect": aspect,
            "counts": {"tools": len(tools), "edges": len(deps), "by_kind": by_kind,
                       "witnessed": sum(1 for d in deps if d["witnessed"])},
            "urls": {"node": node_url, "edge": edge_url}}


def _schema_rows(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """A JSON Schema object's properties as rows: name, type, required, description, other constraints."""
    required = set(schema.get("required", []))
    rows = []
    for name, spec in (schema.get("properties") or {}).items():
        spec = spec if isinstance(spec, dict) else {}
        extra = {k: v for k, v in spec.items() if k not in ("type", "description")}
        rows.append({"name": name, "type": spec.get("type", ""), "required": name in required,
                     "description": spec.get("description", ""),
                     "constraints": ", ".join(f"{k} {v}" for k, v in extra.items())})
    return rows


def graph_tool_panel(slug: str, pk: int) -> dict[str, Any]:
    """What the side panel shows for a tool: its contract, its tests' outcome and its neighbours."""
    tool = (Tool.objects.select_related("domain")
            .only("name", "description", "kind", "status", "mutates", "parameters", "output_fields", "preconditions",
                  "postconditions", "raises", "reads", "writes", "failure_reason", "repair_count", "domain__slug",
                  "domain__name")
            .annotate(test_count=Count("tests"),
                      passed_count=Count("tests", filter=~Q(tests__outcome=ToolTest.Outcome.UNEXPECTED_FAILURE)))
            .get(domain__slug=slug, pk=pk))
    rows = list(Dependency.objects.filter(Q(src=tool) | Q(dst=tool)).values(
        "id", "src_id", "dst_id", "src__name", "dst__name", "kinds", "witnessed").order_by("src__name", "dst__name"))
    needs = [r for r in rows if r["dst_id"] == tool.pk]
    feeds = [r for r in rows if r["src_id"] == tool.pk]
    return {"tool": tool, "domain": tool.domain, "parameters": _schema_rows(tool.parameters or {}),
            "group": tdg.primary_table(tool.name, tool.reads or [], tool.writes or [], tool.kind),
            "needs": needs, "feeds": feeds}


def graph_edge_panel(slug: str, pk: int) -> dict[str, Any]:
    """What the side panel shows for an edge: both tools, each kind's evidence, and the witness run."""
    dep = (Dependency.objects.select_related("src", "dst", "domain")
           .only("kinds", "evidence", "witnessed", "witness", "source", "src__name", "src__description",
                 "dst__name", "dst__description", "domain__slug", "domain__name")
           .get(domain__slug=slug, pk=pk))
    evidence = [{"kind": k, "items": dep.evidence.get(k, [])} for k in GRAPH_KINDS if k in dep.kinds]
    return {"dep": dep, "domain": dep.domain, "evidence": evidence, "witness": dep.witness or {}}


def _primary_kind(kinds: list[str]) -> str:
    """The kind an edge is drawn as when every kind is shown: data flow, else pre/post, else shared state."""
    return next((k for k in GRAPH_KINDS if k in kinds), "shared_state")
