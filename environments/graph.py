"""The tool dependency graph (TDG): edge candidates, witnessing by execution, statistics, layout.

Django-free. Edges A → B ("B needs what A gives") come in three kinds, each with evidence:

* ``data_flow``: an output field of A has the name and type of a parameter of B;
* ``pre_post``: A's post-condition (a row inserted in T, or status set to s) establishes B's
  pre-condition (an existing T row, or status in a set containing s);
* ``shared_state``: A writes a table that B reads.

An edge is **witnessed** when executing A and then B, with B's data-flow parameters taken from
A's *real* output (``$ref``), succeeds in the sandbox.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from environments.runtime import statekit
from environments.runtime.executor import Sandbox

KINDS = ("data_flow", "pre_post", "shared_state")


@dataclass
class Edge:
    src: str
    dst: str
    kinds: list[str]
    evidence: dict[str, Any]
    witnessed: bool = False
    witness: dict[str, Any] = field(default_factory=dict)


def _param_types(tool: Any) -> dict[str, str]:
    return {p: s.get("type", "string") for p, s in tool.parameters.get("properties", {}).items()}


def _inserts_and_sets(steps: list[dict[str, Any]]) -> tuple[set[str], dict[str, set[str]]]:
    inserts: set[str] = set()
    sets: dict[str, set[str]] = {}
    aliases: dict[str, str] = {}
    for step in steps:
        if step["op"] in ("load", "insert"):
            aliases[step["as"]] = step["table"]
        if step["op"] == "insert":
            inserts.add(step["table"])
            status = step["values"].get("status", {})
            if "const" in status:
                sets.setdefault(step["table"], set()).add(status["const"])
        elif step["op"] == "update":
            status = step["set"].get("status", {})
            if "const" in status:
                sets.setdefault(step["table"], set()).add(status["const"])
        elif step["op"] == "if":
            sub_inserts, sub_sets = _inserts_and_sets(step["then"])
            inserts |= sub_inserts
            for t, values in sub_sets.items():
                sets.setdefault(t, set()).update(values)
    return inserts, sets


def _requirements(steps: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, set[str]]]:
    """(tables whose rows B loads by a parameter: table -> param, tables whose status B requires)."""
    loads: dict[str, str] = {}
    aliases: dict[str, str] = {}
    status_req: dict[str, set[str]] = {}
    for step in steps:
        if step["op"] == "load":
            aliases[step["as"]] = step["table"]
            if "param" in step["key"]:
                loads.setdefault(step["table"], step["key"]["param"])
        elif step["op"] == "require":
            (kind, arg), = step["cond"].items()
            if kind in ("in", "eq") and isinstance(arg, list) and isinstance(arg[0], dict) and "var" in arg[0]:
                alias, _, col = arg[0]["var"].partition(".")
                if col == "status" and alias in aliases:
                    values = set(arg[1]) if kind == "in" else {arg[1].get("const")}
                    status_req.setdefault(aliases[alias], set()).update(v for v in values if v)
    return loads, status_req


def candidate_edges(tools: list[Any]) -> list[Edge]:
    """All edges between the given (verified) tools, with evidence for each kind."""
    edges: dict[tuple[str, str], Edge] = {}

    def add(src: str, dst: str, kind: str, evidence: Any) -> None:
        edge = edges.setdefault((src, dst), Edge(src, dst, [], {}))
        if kind not in edge.kinds:
            edge.kinds.append(kind)
            edge.evidence[kind] = []
        if evidence not in edge.evidence[kind]:
            edge.evidence[kind].append(evidence)

    info = {}
    for t in tools:
        inserts, sets = _inserts_and_sets(t.contract["steps"])
        loads, status_req = _requirements(t.contract["steps"])
        info[t.name] = (inserts, sets, loads, status_req, _param_types(t))
    for a in tools:
        a_inserts, a_sets, _l, _s, _p = info[a.name]
        outputs = {}
        for f in a.output_fields:
            outputs.setdefault(f["name"], f)
        for b in tools:
            if a.name == b.name:
                continue
            _i, _st, b_loads, b_status, b_params = info[b.name]
            required = set(b.parameters.get("required", []))
            for param, ptype in b_params.items():
                out = outputs.get(param)
                if out and out["type"] == ptype and (param in required or param.endswith("_id")):
                    add(a.name, b.name, "data_flow", {"field": out["path"], "param": param})
            for table, param in b_loads.items():
                if table in a_inserts:
                    add(a.name, b.name, "pre_post",
                        {"post": f"{a.name} inserts a {table} row", "pre": f"{b.name} requires an existing {table} row ({param})"})
            for table, needed in b_status.items():
                given = a_sets.get(table, set()) & needed
                if given:
                    add(a.name, b.name, "pre_post",
                        {"post": f"{a.name} sets {table}.status to {', '.join(sorted(given))}",
                         "pre": f"{b.name} requires {table}.status in {', '.join(sorted(needed))}"})
            shared = sorted(set(a.writes) & set(b.reads))
            if shared:
                add(a.name, b.name, "shared_state", {"tables": shared})
    return list(edges.values())


def witness_edges(edges: list[Edge], sandbox: Sandbox, fixture: dict[str, Any],
                  positives: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """Execute A then B for each edge; B's data-flow parameters come from A's real output."""
    for edge in edges:
        if edge.src not in positives or edge.dst not in positives:
            edge.witness = {"skipped": "no positive test case to start from"}
            continue
        patch_a, args_a = positives[edge.src]
        patch_b, args_b = positives[edge.dst]
        patch = None
        if patch_a or patch_b:
            patch = statekit.diff_states(fixture, statekit.apply_diff(statekit.apply_diff(fixture, patch_a), patch_b))
        args = dict(args_b)
        fed = []
        for ev in edge.evidence.get("data_flow", []):
            args[ev["param"]] = {"$ref": [0, ev["field"]]}
            fed.append(ev["param"])
        run = sandbox.run_sequence([{"tool": edge.src, "args": args_a}, {"tool": edge.dst, "args": args}],
                                   patch=patch, diffs=False, state_hash=False, values=False)
        outcomes = [r["outcome"] for r in run["results"]]
        edge.witnessed = outcomes == ["success", "success"]
        edge.witness = {"outcomes": outcomes, "fed": fed}
        if not edge.witnessed:
            failed = next((r for r in run["results"] if r["outcome"] != "success"), {})
            edge.witness["error"] = f"{failed.get('error_type')}: {failed.get('error')}"[:300]


def build_graph(tool_names: list[str], edges: list[Edge]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(tool_names)
    for e in edges:
        graph.add_edge(e.src, e.dst, kinds=e.kinds, witnessed=e.witnessed)
    return graph


def _causal(tool_names: list[str], edges: list[Edge]) -> nx.DiGraph:
    causal = nx.DiGraph()
    causal.add_nodes_from(tool_names)
    causal.add_edges_from((e.src, e.dst) for e in edges if {"data_flow", "pre_post"} & set(e.kinds))
    return causal


def acyclic_orientation(graph: nx.DiGraph) -> nx.DiGraph:
    """Drop a small set of feedback edges so that the rest is a DAG (Eades–Lin–Smyth greedy order).

    TDGs have many cycles (get_x feeds update_x, which feeds get_x), so layers of the condensation
    collapse into one; this keeps the direction of most edges instead.
    """
    work = graph.copy()
    work.remove_edges_from(nx.selfloop_edges(work))
    head: list[str] = []
    tail: list[str] = []
    while work.number_of_nodes():
        changed = True
        while changed:
            changed = False
            sinks = sorted(n for n in work if work.out_degree(n) == 0)
            if sinks:
                tail.extend(sinks)
                work.remove_nodes_from(sinks)
                changed = True
            sources = sorted(n for n in work if work.in_degree(n) == 0)
            if sources:
                head.extend(sources)
                work.remove_nodes_from(sources)
                changed = True
        if work.number_of_nodes():
            best = max(sorted(work), key=lambda n: work.out_degree(n) - work.in_degree(n))
            head.append(best)
            work.remove_node(best)
    order = {n: i for i, n in enumerate(head + list(reversed(tail)))}
    dag = nx.DiGraph()
    dag.add_nodes_from(graph)
    dag.add_edges_from((u, v) for u, v in graph.edges if order[u] < order[v])
    return dag


def graph_stats(tool_names: list[str], edges: list[Edge]) -> dict[str, Any]:
    graph = build_graph(tool_names, edges)
    by_kind = {k: sum(1 for e in edges if k in e.kinds) for k in KINDS}
    witnessed = sum(1 for e in edges if e.witnessed)
    # Longest causal chain: the longest path over data-flow and pre/post edges once the few edges
    # closing cycles are dropped (a lower bound of the longest simple path, which is NP-hard).
    dag = acyclic_orientation(_causal(tool_names, edges))
    longest = nx.dag_longest_path_length(dag) if dag.number_of_nodes() else 0
    return {
        "nodes": graph.number_of_nodes(),
        "edges": graph.number_of_edges(),
        "edges_by_kind": by_kind,
        "density": round(nx.density(graph), 4) if graph.number_of_nodes() > 1 else 0.0,
        "witnessed": witnessed,
        "witnessed_share": round(witnessed / len(edges), 4) if edges else 0.0,
        "weakly_connected_components": nx.number_weakly_connected_components(graph) if graph.number_of_nodes() else 0,
        "longest_path": longest,
    }


def layout(tool_names: list[str], edges: list[Edge], spacing: tuple[int, int] = (170, 90),
           max_per_row: int = 9) -> dict[str, dict[str, float]]:
    """Layered positions: longest-path layers of the acyclic causal orientation, barycentre order
    within a layer, wide layers wrapped into several rows."""
    dag = acyclic_orientation(_causal(tool_names, edges))
    depth: dict[str, int] = {}
    for node in nx.topological_sort(dag):
        depth[node] = max((depth[p] + 1 for p in dag.predecessors(node)), default=0)
    layers: dict[int, list[str]] = {}
    for node, d in depth.items():
        layers.setdefault(d, []).append(node)
    positions: dict[str, dict[str, float]] = {}
    row = 0
    for d in sorted(layers):
        layer = sorted(layers[d])
        def barycentre(node: str) -> float:
            xs = [positions[p]["x"] for p in dag.predecessors(node) if p in positions]
            return sum(xs) / len(xs) if xs else 0.0
        layer.sort(key=lambda n: (barycentre(n), n))
        for start in range(0, len(layer), max_per_row):
            chunk = layer[start:start + max_per_row]
            width = (len(chunk) - 1) * spacing[0]
            offset = (spacing[0] / 2) if (row % 2 and len(chunk) == max_per_row) else 0.0
            for i, node in enumerate(chunk):
                positions[node] = {"x": round(i * spacing[0] - width / 2 + offset, 1), "y": float(row * spacing[1])}
            row += 1
    return positions


# --- Readable layout (the graph pages) --------------------------------------------------------------
#
# One box per table (the tools about it), boxes packed in rows to fill a screen of a given aspect
# ratio, tools inside a box in columns left to right by call depth: entry points (create, search)
# first, then the tools needing ids the earlier ones make. The longest-path layering above stretches
# these dense, cyclic graphs into 20+ layers of one or two tools (a thin column, or a thin strip);
# call depth gives a handful of layers that mean something.

LAYOUT_VERSION = 5
LABEL_CHARS = 18  # a label line wraps after this many characters, at an underscore
LABEL_FONT_PX = 13  # graph.js draws labels at this size (smaller if the estimate below was short)
CHAR_WIDTH = 7.4  # estimated width of one character of a 13 px label
LINE_HEIGHT = 16.0
PAD_X, PAD_Y = 14.0, 8.0  # inside a node, around its label
H_GAP, V_GAP = 16.0, 10.0  # between nodes in a box
BOX_PAD, BOX_TITLE, BOX_GAP = 12.0, 24.0, 28.0  # around and between table boxes
TITLE_CHAR_WIDTH = 8.8  # a box title is "<table> · <count>" in 14 px bold
ASPECTS = (1.0, 1.5, 2.0, 2.5, 3.0)  # widths / heights a client may ask for


@dataclass
class LayoutNode:
    name: str
    group: str  # the box: the tool's main table, or its kind when it touches no table
    active: bool = True  # failed tools are placed after the verified ones of their box, at no depth
    label: str = ""
    width: float = 0.0
    height: float = 0.0

    def __post_init__(self) -> None:
        if not self.label:
            self.label = wrap_label(self.name)
        lines = self.label.split("\n")
        self.width = self.width or round(max(len(line) for line in lines) * CHAR_WIDTH + 2 * PAD_X, 1)
        self.height = self.height or round(len(lines) * LINE_HEIGHT + 2 * PAD_Y, 1)


def wrap_label(name: str, width: int = LABEL_CHARS) -> str:
    """Break a snake_case name into lines of at most `width` characters, after underscores."""
    parts = [p + "_" for p in name.split("_")]
    parts[-1] = parts[-1][:-1]
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + len(part) <= width:
            lines[-1] += part
        else:
            lines.append(part)
    return "\n".join(line for line in lines if line)


def primary_table(name: str, reads: list[str], writes: list[str], kind: str) -> str:
    """The table a tool is about: the touched table named earliest in the tool's name (book_screening
    is about screenings, list_critiques_for_show about critiques), else what it writes, else reads."""
    touched = list(dict.fromkeys([*writes, *reads]))
    lowered = name.lower()
    best: tuple[int, int, str] | None = None
    for table in touched:
        for form in _singulars(table):
            at = lowered.find(form)
            if at >= 0 and (best is None or (at, -len(form), table) < best):
                best = (at, -len(form), table)
    if best:
        return best[2]
    return touched[0] if touched else f"({kind or 'other'} tools)"


def _singulars(table: str) -> set[str]:
    forms = {table}
    if table.endswith("ies"):
        forms.add(table[:-3] + "y")
    elif table.endswith("es"):
        forms.update((table[:-2], table[:-1]))
    elif table.endswith("s"):
        forms.add(table[:-1])
    return forms


def graph_hash(nodes: list[LayoutNode], edges: list[Edge]) -> str:
    """What the layout depends on: nodes with their boxes and labels, edges with their kinds and
    needs (witnessing moves nothing)."""
    payload = [LAYOUT_VERSION,
               sorted((n.name, n.group, n.active, n.label) for n in nodes),
               sorted((e.src, e.dst, sorted(e.kinds), _needs_key(e)) for e in edges)]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()[:32]


def _needs_key(edge: Edge) -> list[str]:
    """What the edge's target needs from its source: the ids it is fed and the pre-conditions it has
    met. Other fed values (a title, an email) could come from the user, so they order nothing; an
    edge with no evidence at all is a need of its own."""
    if not edge.evidence:
        return [f"edge:{edge.src}"]
    needs = {f"param:{ev['param']}" for ev in edge.evidence.get("data_flow", [])
             if isinstance(ev, dict) and str(ev.get("param", "")).endswith("id")}
    needs.update(f"pre:{ev['pre']}" for ev in edge.evidence.get("pre_post", []) if isinstance(ev, dict) and "pre" in ev)
    return sorted(needs)


def call_depth(names: list[str], edges: list[Edge]) -> dict[str, int]:
    """How many calls must come before a tool's inputs exist (a relaxed planning graph).

    A tool needs each parameter some other tool's output can feed (data-flow evidence; an edge without
    evidence is a need of its own); it is callable one round after every need has a callable producer.
    Tools needing nothing are round 0. When a round adds nothing (needs only met inside a cycle), the
    tool with the fewest unmet needs is let in, its unmet needs taken as given by the user.
    """
    producers: dict[str, dict[str, set[str]]] = {n: {} for n in names}
    for e in edges:
        if e.src == e.dst or e.src not in producers or e.dst not in producers:
            continue
        if not {"data_flow", "pre_post"} & set(e.kinds):
            continue
        for need in _needs_key(e):
            producers[e.dst].setdefault(need, set()).add(e.src)
    consumers: dict[str, list[tuple[str, str]]] = {n: [] for n in names}
    unmet: dict[str, set[str]] = {}
    for tool, needs in producers.items():
        unmet[tool] = set(needs)
        for need, srcs in needs.items():
            for src in srcs:
                consumers[src].append((tool, need))
    depth: dict[str, int] = {}
    waiting = set(names)

    def level(tool: str) -> int:
        met = [min(depth[p] for p in srcs if p in depth) for srcs in producers[tool].values() if any(p in depth for p in srcs)]
        return 1 + max(met, default=-1)

    while waiting:
        ready = sorted(t for t in waiting if not unmet[t])
        if not ready:  # every waiting tool needs something only a waiting tool makes: take it as given
            ready = [min(waiting, key=lambda t: (len(unmet[t]), t))]
        levels = {t: level(t) for t in ready}
        for tool in ready:
            depth[tool] = levels[tool]
            waiting.discard(tool)
        for tool in ready:
            for consumer, need in consumers[tool]:
                unmet[consumer].discard(need)
    # Close gaps (a relaxed tool may have jumped a round): layers are 0..k with none empty.
    ranks = {level: i for i, level in enumerate(sorted(set(depth.values())))}
    return {tool: ranks[level] for tool, level in depth.items()}


def _order_groups(groups: list[str], group_of: dict[str, str], layer_of: dict[str, int], edges: list[Edge]) -> list[str]:
    """Reading order of the boxes: upstream tables first (lower mean call depth), then barycentre
    sweeps so that boxes exchanging many edges sit near each other."""
    weight: dict[tuple[str, str], int] = {}
    for e in edges:
        a, b = group_of.get(e.src), group_of.get(e.dst)
        if a and b and a != b:
            key = (a, b) if a < b else (b, a)
            weight[key] = weight.get(key, 0) + 1
    members: dict[str, list[int]] = {g: [] for g in groups}
    for node, group in group_of.items():
        members[group].append(layer_of.get(node, 0))
    order = sorted(groups, key=lambda g: (sum(members[g]) / max(len(members[g]), 1), -len(members[g]), g))
    for _sweep in range(4):
        index = {g: i for i, g in enumerate(order)}

        def barycentre(group: str, index: dict[str, int] = index) -> tuple[float, str]:
            total, mass = index[group] * 3.0, 3.0  # inertia: stay unless pulled hard
            for (a, b), w in weight.items():
                if group in (a, b):
                    total += index[b if group == a else a] * w
                    mass += w
            return total / mass, group

        order = sorted(order, key=barycentre)
    return order


@dataclass
class _Box:
    group: str
    names: list[str]
    columns: list[list[str]] = field(default_factory=list)
    col_widths: list[float] = field(default_factory=list)
    row_heights: list[float] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0


def _fill(box: _Box, rows: int, by_name: dict[str, LayoutNode]) -> None:
    """Column-major: the box's tools in order (call depth, then neighbours), `rows` to a column; a
    column is as wide as its widest label, a row as high as its highest."""
    box.columns = [box.names[i:i + rows] for i in range(0, len(box.names), rows)]
    box.col_widths = [max(by_name[n].width for n in col) for col in box.columns]
    box.row_heights = [max(by_name[col[r]].height for col in box.columns if r < len(col))
                       for r in range(min(rows, len(box.names)))]
    title = (len(box.group) + 3 + len(str(len(box.names)))) * TITLE_CHAR_WIDTH
    box.width = max(sum(box.col_widths) + H_GAP * (len(box.columns) - 1), title) + 2 * BOX_PAD
    box.height = BOX_TITLE + sum(box.row_heights) + V_GAP * (len(box.row_heights) - 1) + 2 * BOX_PAD


def _shelves(boxes: list[_Box], width: float) -> tuple[list[list[_Box]], float, float]:
    """Next-fit shelf packing in reading order: (shelves, used width, height)."""
    shelves: list[list[_Box]] = [[]]
    x = 0.0
    for box in boxes:
        if shelves[-1] and x + box.width > width:
            shelves.append([])
            x = 0.0
        shelves[-1].append(box)
        x += box.width + BOX_GAP
    used = max(sum(b.width for b in s) + BOX_GAP * (len(s) - 1) for s in shelves)
    height = sum(max(b.height for b in s) for s in shelves) + BOX_GAP * (len(shelves) - 1)
    return shelves, used, height


def readable_layout(nodes: list[LayoutNode], edges: list[Edge], aspect: float = 2.0) -> dict[str, Any]:
    """Positions (centres) of every node and the boxes of the tables, for a drawing about `aspect`
    times as wide as high: the rows per column and the shelf width are those that let the drawing fit
    the largest in such a screen."""
    if not nodes:
        return {"positions": {}, "groups": [], "width": 0.0, "height": 0.0, "layers": 0, "depth": {}, "aspect": aspect}
    by_name = {n.name: n for n in nodes}
    layer_of = call_depth([n.name for n in nodes if n.active], edges)
    after = max(layer_of.values(), default=-1) + 1
    group_of = {n.name: n.group for n in nodes}
    order = _order_groups(sorted(set(group_of.values())), group_of, layer_of, edges)
    neighbours: dict[str, set[str]] = {n: set() for n in by_name}
    for e in edges:
        if e.src in by_name and e.dst in by_name and e.src != e.dst:
            neighbours[e.src].add(e.dst)
            neighbours[e.dst].add(e.src)
    boxes = {g: _Box(g, sorted((n for n in by_name if group_of[n] == g),
                               key=lambda n: (layer_of.get(n, after), n))) for g in order}

    def arrange() -> tuple[int, float]:
        best: tuple[float, int, float] | None = None
        for rows in range(1, max(len(b.names) for b in boxes.values()) + 1):
            for box in boxes.values():
                _fill(box, rows, by_name)
            seq = [boxes[g] for g in order]
            widest = max(b.width for b in seq)
            total = sum(b.width for b in seq) + BOX_GAP * (len(seq) - 1)
            # Shelf widths from one box per row up to all boxes in one row, geometrically spaced.
            steps = 28
            for k in range(steps + 1):
                width = widest * (total / widest) ** (k / steps)
                _s, used, height = _shelves(seq, width + 0.5)
                cost = max(used / aspect, height)  # the drawing's size once fitted to the screen
                if best is None or cost < best[0] - 1e-6:
                    best = (cost, rows, width + 0.5)
        assert best is not None
        return best[1], best[2]

    def place(rows: int, width: float) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]], float, float]:
        for box in boxes.values():
            _fill(box, rows, by_name)
        shelves, used, height = _shelves([boxes[g] for g in order], width)
        positions: dict[str, dict[str, float]] = {}
        frames: list[dict[str, Any]] = []
        y = 0.0
        for shelf in shelves:
            x = 0.0
            for box in shelf:
                cx = x + BOX_PAD
                tops = [y + BOX_PAD + BOX_TITLE + sum(box.row_heights[:r]) + V_GAP * r for r in range(len(box.row_heights))]
                for col, col_w in zip(box.columns, box.col_widths):
                    for r, name in enumerate(col):
                        positions[name] = {"x": round(cx + col_w / 2, 1), "y": round(tops[r] + box.row_heights[r] / 2, 1)}
                    cx += col_w + H_GAP
                frames.append({"name": box.group, "x": round(x + box.width / 2, 1), "y": round(y + box.height / 2, 1),
                               "width": round(box.width, 1), "height": round(box.height, 1),
                               "left": round(x, 1), "top": round(y, 1), "tools": len(box.names)})
                x += box.width + BOX_GAP
            y += max(b.height for b in shelf) + BOX_GAP
        return positions, frames, used, height

    rows, width = arrange()
    positions, frames, used, height = place(rows, width)
    # Two barycentre sweeps: inside a box and a call depth, a tool moves towards its neighbours
    # (then the shape is chosen again, as columns may have changed width).
    for _sweep in range(2):
        def key(name: str, positions: dict[str, dict[str, float]] = positions) -> tuple[int, float, float, str]:
            outside = [positions[m] for m in neighbours[name] if group_of[m] != group_of[name]]
            mean_y = sum(p["y"] for p in outside) / len(outside) if outside else positions[name]["y"]
            mean_x = sum(p["x"] for p in outside) / len(outside) if outside else positions[name]["x"]
            return layer_of.get(name, after), mean_y, mean_x, name
        for box in boxes.values():
            box.names.sort(key=key)
        positions, frames, used, height = place(rows, width)
    rows, width = arrange()
    positions, frames, used, height = place(rows, width)
    return {"positions": positions, "groups": frames, "width": round(used, 1), "height": round(height, 1),
            "layers": after + (1 if any(not n.active for n in nodes) else 0), "aspect": aspect,
            "depth": {n: layer_of.get(n, after) for n in by_name}, "rows": rows}
