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
