"""The dependency graph people can read: a server layout that fills a wide screen with one box per
table and tools left to right by call depth, cached on the domain; the graph JSON and its side panels."""

from __future__ import annotations

import dataclasses
import random
import time

import pytest

from environments import graph
from environments.models import Dependency, Domain, Tool
from tests.conftest import page_client, store_domain, synthesized

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1) hx-get="/admin/">'


def layout_inputs(seed: int) -> tuple[list[graph.LayoutNode], list[graph.Edge]]:
    result = synthesized(seed)
    nodes = [graph.LayoutNode(t.name, graph.primary_table(t.name, t.reads, t.writes, t.kind)) for t in result.spec.tools]
    return nodes, result.edges


def boxes_of(nodes: list[graph.LayoutNode], positions: dict[str, dict[str, float]]) -> dict[str, tuple[float, float, float, float]]:
    return {n.name: (positions[n.name]["x"] - n.width / 2, positions[n.name]["y"] - n.height / 2,
                     positions[n.name]["x"] + n.width / 2, positions[n.name]["y"] + n.height / 2) for n in nodes}


def overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# --- A generated graph of the size the issue asks to stay usable at: 500 tools, 5,000 edges -----------

def large_graph(tools: int = 500, edges: int = 5000, seed: int = 9) -> tuple[list[dict], list[graph.Edge]]:
    """Tools over 50 tables (create, get, update, ... of each), ids flowing from each table's creator to
    its readers and writers and on to other tables' tools, plus pre/post and shared-state edges."""
    rng = random.Random(seed)
    verbs = ["create", "get", "update", "delete", "list", "search", "count", "close", "reopen", "archive"]
    tables = [f"{noun}_{i}" for i, noun in enumerate(rng.choice(["order", "ticket", "invoice", "room", "visit", "item", "plan", "note"])
                                                      for _ in range(tools // len(verbs)))]
    specs = []
    for table in tables:
        for verb in verbs:
            specs.append({"name": f"{verb}_{table}", "table": f"{table}s", "kind": "read" if verb in ("get", "list", "search", "count") else "write",
                          "mutates": verb not in ("get", "list", "search", "count")})
    names = [s["name"] for s in specs]
    found: dict[tuple[str, str], graph.Edge] = {}

    def add(src: str, dst: str, kind: str, evidence: dict) -> None:
        if src != dst and (src, dst) not in found:
            found[(src, dst)] = graph.Edge(src, dst, [kind], {kind: [evidence]}, witnessed=rng.random() < 0.7)

    for table in tables:
        for verb in verbs[1:]:
            add(f"create_{table}", f"{verb}_{table}", "data_flow", {"field": f"{table}_id", "param": f"{table}_id"})
            add(f"get_{table}", f"{verb}_{table}", "data_flow", {"field": f"{table}_id", "param": f"{table}_id"})
    while len(found) < edges:
        src, dst = rng.choice(names), rng.choice(names)
        table = src.split("_", 1)[1]
        kind = rng.choices(["data_flow", "pre_post", "shared_state"], weights=[6, 1, 2])[0]
        evidence = {"data_flow": {"field": f"{table}_id", "param": f"{table}_id"},
                    "pre_post": {"post": f"{src} inserts a {table}s row", "pre": f"{dst} requires an existing {table}s row"},
                    "shared_state": {"tables": [f"{table}s"]}}[kind]
        add(src, dst, kind, evidence)
    return specs, list(found.values())


def store_large_domain(tools: int = 500, edges: int = 5000) -> Domain:
    """The generated graph as a stored domain (tools without code: only the graph pages read it)."""
    specs, deps = large_graph(tools, edges)
    domain = Domain.objects.create(name=f"Generated {tools}-tool domain", slug=f"generated-{tools}", description="A generated graph.",
                                   sector="test", backend="generated", seed=tools, spec_hash="-", status="verified",
                                   clock="2026-03-02T09:00:00Z", stats={"nodes": tools, "edges": edges})
    Tool.objects.bulk_create(Tool(domain=domain, name=s["name"], description=f"Generated tool {s['name']}.", kind=s["kind"],
                                  parameters={"type": "object", "properties": {}}, returns={}, contract={}, code="",
                                  status="verified", reads=[s["table"]], writes=[s["table"]] if s["mutates"] else [],
                                  mutates=s["mutates"]) for s in specs)
    ids = dict(domain.tools.values_list("name", "id"))
    Dependency.objects.bulk_create(Dependency(domain=domain, src_id=ids[e.src], dst_id=ids[e.dst], kinds=e.kinds,
                                              evidence=e.evidence, witnessed=e.witnessed,
                                              witness={"outcomes": ["success", "success"]} if e.witnessed else {"skipped": "generated"})
                                   for e in deps)
    return domain


# --- The layout (Django-free) --------------------------------------------------------------------------

def test_labels_wrap_at_underscores_and_tables_are_what_a_tool_is_about():
    assert graph.wrap_label("list_subscription_payments_for_subscription_invoice", 24) == \
        "list_subscription_\npayments_for_\nsubscription_invoice"
    assert graph.wrap_label("get_show") == "get_show"
    assert graph.primary_table("book_screening", ["screenings", "subscribers"], ["screenings", "seat_reservations"], "action") == "screenings"
    assert graph.primary_table("list_critiques_for_show", ["critiques", "shows"], [], "read") == "critiques"
    assert graph.primary_table("get_company", ["companies"], [], "read") == "companies"
    assert graph.primary_table("add_numbers", [], [], "compute") == "(compute tools)"


def test_call_depth_puts_the_tools_making_ids_before_the_tools_needing_them():
    edges = [graph.Edge("create_show", "get_show", ["data_flow"], {"data_flow": [{"field": "show_id", "param": "show_id"}]}),
             graph.Edge("get_show", "update_show", ["data_flow"], {"data_flow": [{"field": "show_id", "param": "show_id"}]}),
             graph.Edge("update_show", "get_show", ["data_flow"], {"data_flow": [{"field": "show_id", "param": "show_id"}]}),
             graph.Edge("create_show", "update_show", ["data_flow"], {"data_flow": [{"field": "show_id", "param": "show_id"}]}),
             graph.Edge("get_show", "create_episode", ["data_flow"], {"data_flow": [{"field": "show_id", "param": "show_id"}]}),
             graph.Edge("create_episode", "get_episode", ["data_flow"], {"data_flow": [{"field": "episode_id", "param": "episode_id"}]}),
             # a title can come from the user: it orders nothing
             graph.Edge("get_episode", "create_show", ["data_flow"], {"data_flow": [{"field": "title", "param": "title"}]}),
             graph.Edge("get_episode", "get_show", ["shared_state"], {"shared_state": [{"tables": ["shows"]}]})]
    depth = graph.call_depth(["create_show", "get_show", "update_show", "create_episode", "get_episode"], edges)
    assert depth == {"create_show": 0, "get_show": 1, "update_show": 1, "create_episode": 2, "get_episode": 3}


def test_call_depth_breaks_a_cycle_no_tool_can_enter():
    edges = [graph.Edge("a", "b", ["data_flow"], {}), graph.Edge("b", "a", ["data_flow"], {}), graph.Edge("b", "c", ["pre_post"], {})]
    depth = graph.call_depth(["a", "b", "c"], edges)
    assert depth["a"] < depth["b"] < depth["c"]


@pytest.mark.parametrize("seed", [3, 1001, 2])
def test_a_synthesized_domain_is_laid_out_wide_in_table_boxes_without_overlaps(seed):
    nodes, edges = layout_inputs(seed)
    layout = graph.readable_layout(nodes, edges, aspect=2.0)
    positions = layout["positions"]
    assert set(positions) == {n.name for n in nodes}
    # Wide, not a column: the drawing's aspect ratio is near the screen's.
    assert 1.4 <= layout["width"] / layout["height"] <= 2.9, (layout["width"], layout["height"])
    # A 1,360 x 700 graph area shows the whole drawing with 13 px labels at 9 px or more.
    assert min(1320 / layout["width"], 660 / layout["height"]) * graph.LABEL_FONT_PX >= 9.0
    boxes = boxes_of(nodes, positions)
    names = sorted(boxes)
    assert not [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if overlaps(boxes[a], boxes[b])]
    # Every tool sits inside its table's box, and the boxes do not overlap either.
    frames = {f["name"]: f for f in layout["groups"]}
    for n in nodes:
        f = frames[n.group]
        x1, y1, x2, y2 = boxes[n.name]
        assert f["left"] <= x1 and x2 <= f["left"] + f["width"] and f["top"] <= y1 and y2 <= f["top"] + f["height"]
    rects = {g: (f["left"], f["top"], f["left"] + f["width"], f["top"] + f["height"]) for g, f in frames.items()}
    groups = sorted(rects)
    assert not [(a, b) for i, a in enumerate(groups) for b in groups[i + 1:] if overlaps(rects[a], rects[b])]
    # Left to right inside a box: a tool of lower call depth is never right of one of higher depth.
    depth = layout["depth"]
    for g in groups:
        members = [n.name for n in nodes if n.group == g]
        for a in members:
            for b in members:
                if depth[a] < depth[b]:
                    assert positions[a]["x"] <= positions[b]["x"], (a, b)
    assert layout["layers"] >= 3


def test_the_aspect_asked_for_shapes_the_drawing():
    nodes, edges = layout_inputs(3)
    tall = graph.readable_layout(nodes, edges, aspect=1.0)
    wide = graph.readable_layout(nodes, edges, aspect=3.0)
    assert tall["width"] / tall["height"] < wide["width"] / wide["height"]
    assert wide["width"] / wide["height"] > 2.0


def test_a_failed_tool_keeps_a_place_after_the_verified_ones_of_its_box():
    nodes, edges = layout_inputs(1001)
    victim = nodes[0]
    victim.active = False
    edges = [e for e in edges if victim.name not in (e.src, e.dst)]
    layout = graph.readable_layout(nodes, edges)
    assert layout["depth"][victim.name] == max(layout["depth"].values())


def test_the_graph_hash_changes_with_the_edges_not_with_witnessing():
    nodes, edges = layout_inputs(1001)
    edges = [dataclasses.replace(e) for e in edges]  # the synthesized domain is shared by other tests
    before = graph.graph_hash(nodes, edges)
    edges[0].witnessed = not edges[0].witnessed
    assert graph.graph_hash(nodes, edges) == before
    assert graph.graph_hash(nodes, edges[1:]) != before


def test_layout_of_500_tools_and_5000_edges_is_quick_and_fits():
    specs, edges = large_graph()
    nodes = [graph.LayoutNode(s["name"], s["table"]) for s in specs]
    started = time.perf_counter()
    layout = graph.readable_layout(nodes, edges, aspect=2.0)
    one = time.perf_counter() - started
    started = time.perf_counter()
    for aspect in graph.ASPECTS:
        graph.readable_layout(nodes, edges, aspect=aspect)
    every = time.perf_counter() - started
    print(f"\nlayout of {len(nodes)} tools and {len(edges)} edges: {one * 1000:.0f} ms for one aspect, "
          f"{every * 1000:.0f} ms for all {len(graph.ASPECTS)}; drawing {layout['width']:.0f} x {layout['height']:.0f}")
    assert len(layout["positions"]) == 500 and len(edges) == 5000
    assert 1.4 <= layout["width"] / layout["height"] <= 2.9
    assert every < 20.0  # generous: a slow CI machine; typically well under a second per aspect


# --- Cached on the domain, served as JSON, panels as fragments ----------------------------------------

@pytest.mark.django_db
def test_the_graph_json_serves_cached_positions_boxes_and_typed_edges(django_assert_max_num_queries):
    domain = store_domain(1001)
    client = page_client("Viewer")
    client.get("/healthz")
    data = client.get(f"/domains/{domain.slug}/graph.json").json()
    assert len(data["nodes"]) == domain.tools.count() and len(data["edges"]) == domain.stats["edges"]
    node = data["nodes"][0]
    assert {"id", "pk", "name", "label", "w", "h", "kind", "status", "group", "depth"} <= set(node["data"])
    assert {e["data"]["source"] for e in data["edges"]} <= {n["data"]["id"] for n in data["nodes"]}
    assert all(set(e["data"]["kinds"]) <= {"data_flow", "pre_post", "shared_state"} and e["data"]["kinds"] for e in data["edges"])
    assert {g["data"]["label"] for g in data["groups"]} == {n["data"]["group"] for n in data["nodes"]}
    assert data["urls"]["node"].endswith("/graph/tools/") and data["urls"]["edge"].endswith("/graph/edges/")
    domain.refresh_from_db()
    assert domain.layout["version"] == graph.LAYOUT_VERSION and set(domain.layout["by_aspect"]) == {"2.0"}
    # Another screen shape adds its own layout beside the first.
    assert client.get(f"/domains/{domain.slug}/graph.json?aspect=3.3").json()["aspect"] == 3.0
    domain.refresh_from_db()
    assert set(domain.layout["by_aspect"]) == {"2.0", "3.0"}
    # Cached: the next request reads the domain, its tools and its edges, and writes nothing.
    with django_assert_max_num_queries(3 + 4) as ctx:
        again = client.get(f"/domains/{domain.slug}/graph.json?aspect=2.9").json()
    assert not [q for q in ctx.captured_queries if q["sql"].startswith("UPDATE")]
    assert again["aspect"] == 3.0 and again["nodes"][0]["position"] == \
        next(n for n in domain.layout["by_aspect"]["3.0"]["positions"].items() if n[0] == again["nodes"][0]["data"]["name"])[1]
    # A changed graph is laid out anew.
    domain.dependencies.filter(pk=domain.dependencies.order_by("pk").first().pk).delete()
    client.get(f"/domains/{domain.slug}/graph.json")
    fresh = Domain.objects.get(pk=domain.pk).layout
    assert fresh["hash"] != domain.layout["hash"]


@pytest.mark.django_db
def test_the_domain_page_warms_the_cache_and_takes_a_highlight():
    domain = store_domain(1001)
    names = list(domain.tools.order_by("name").values_list("name", flat=True)[:3])
    body = page_client("Viewer").get(f"/domains/{domain.slug}/?h={','.join(names)}&chain={names[0]},{names[1]}").content.decode()
    assert 'class="graph-widget"' in body and f'data-graph-url="/domains/{domain.slug}/graph.json"' in body
    assert f'"h": ["{names[0]}", "{names[1]}", "{names[2]}"]' in body and "show the graph without them" in body
    assert Domain.objects.get(pk=domain.pk).layout["version"] == graph.LAYOUT_VERSION


@pytest.mark.django_db
def test_the_tool_panel_shows_contract_status_neighbours_and_a_link_escaped(django_assert_max_num_queries):
    domain = store_domain(1001)
    tool = domain.tools.get(name="book_viewing_slot") if domain.tools.filter(name="book_viewing_slot").exists() else domain.tools.first()
    tool.description = HOSTILE
    tool.save()
    client = page_client("Viewer")
    client.get("/healthz")
    with django_assert_max_num_queries(3 + 4):
        response = client.get(f"/domains/{domain.slug}/graph/tools/{tool.pk}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert HOSTILE not in body and "&lt;script&gt;" in body and 'hx-disable' in body
    assert tool.name in body and "Parameters" in body and f"/domains/{domain.slug}/tools/{tool.name}/" in body
    assert "Needs (" in body and "Feeds (" in body and 'data-graph-edge="' in body
    for param in tool.parameters["properties"]:
        assert param in body


@pytest.mark.django_db
def test_the_edge_panel_shows_evidence_and_witness():
    domain = store_domain(1001)
    client = page_client("Viewer")
    judged = domain.dependencies.filter(witnessed=False).select_related("src", "dst").first()
    body = client.get(f"/domains/{domain.slug}/graph/edges/{judged.pk}/").content.decode()
    assert "judged only" in body and "Evidence" in body and "Witness" in body
    assert judged.src.name in body and judged.dst.name in body
    if judged.witness.get("error"):
        assert judged.witness["error"].split(":")[0] in body
    witnessed = next(d for d in domain.dependencies.filter(witnessed=True) if "data_flow" in d.kinds)
    body = client.get(f"/domains/{domain.slug}/graph/edges/{witnessed.pk}/").content.decode()
    assert "witnessed" in body and "success" in body


@pytest.mark.django_db
def test_panels_and_json_belong_to_their_domain_and_need_a_role():
    domain = store_domain(1001)
    other = store_domain(1002)
    tool = other.tools.first()
    edge = other.dependencies.first()
    client = page_client("Viewer")
    assert client.get(f"/domains/{domain.slug}/graph/tools/{tool.pk}/").status_code == 404
    assert client.get(f"/domains/{domain.slug}/graph/edges/{edge.pk}/").status_code == 404
    assert client.get("/domains/nope/graph.json").status_code == 404
    assert page_client("Agent", "bot").get(f"/domains/{domain.slug}/graph.json").status_code == 403
    assert page_client("Agent", "bot2").get(f"/domains/{other.slug}/graph/tools/{tool.pk}/").status_code == 403


@pytest.mark.django_db
def test_the_json_of_a_large_domain_is_served_quickly():
    domain = store_large_domain()
    client = page_client("Viewer")
    started = time.perf_counter()
    response = client.get(f"/domains/{domain.slug}/graph.json")
    cold = time.perf_counter() - started
    started = time.perf_counter()
    client.get(f"/domains/{domain.slug}/graph.json")
    warm = time.perf_counter() - started
    data = response.json()
    print(f"\ngraph.json of 500 tools / 5,000 edges: {cold * 1000:.0f} ms cold (layout computed), "
          f"{warm * 1000:.0f} ms cached, {len(response.content) / 1024:.0f} KiB")
    assert len(data["nodes"]) == 500 and len(data["edges"]) == 5000
    assert warm < 5.0
