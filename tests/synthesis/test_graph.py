"""The tool dependency graph: three edge kinds with evidence, witnessing, statistics, layout."""

from environments import graph
from tests.conftest import synthesized


def test_edges_of_all_three_kinds_exist_with_evidence():
    result = synthesized(1001)
    kinds = {k for e in result.edges for k in e.kinds}
    assert kinds == {"data_flow", "pre_post", "shared_state"}
    for e in result.edges:
        for kind in e.kinds:
            assert e.evidence[kind]
    flow = next(e for e in result.edges if "data_flow" in e.kinds)
    ev = flow.evidence["data_flow"][0]
    dst = result.spec.tool(flow.dst)
    assert ev["param"] in dst.parameters["properties"]


def test_a_majority_of_edges_is_witnessed_by_execution():
    result = synthesized(1001)
    witnessed = [e for e in result.edges if e.witnessed]
    assert len(witnessed) / len(result.edges) > 0.5
    fed = next(e for e in witnessed if e.witness.get("fed"))
    assert fed.witness["outcomes"] == ["success", "success"]
    failed = next(e for e in result.edges if not e.witnessed)
    assert failed.witness.get("error") or failed.witness.get("skipped")


def test_statistics_describe_the_graph():
    result = synthesized(1001)
    stats = result.stats
    assert stats["nodes"] == sum(1 for s in result.tool_status.values() if s["status"] == "verified")
    assert stats["edges"] == len(result.edges)
    assert sum(stats["edges_by_kind"].values()) >= stats["edges"]
    assert 0 < stats["density"] <= 1
    assert stats["witnessed"] == sum(1 for e in result.edges if e.witnessed)
    assert stats["weakly_connected_components"] >= 1
    assert stats["longest_path"] >= 1


def test_longest_path_and_components_on_a_known_graph():
    edges = [graph.Edge("a", "b", ["data_flow"], {}), graph.Edge("b", "c", ["pre_post"], {}),
             graph.Edge("c", "d", ["data_flow"], {}), graph.Edge("d", "c", ["data_flow"], {}),
             graph.Edge("e", "a", ["shared_state"], {})]
    stats = graph.graph_stats(["a", "b", "c", "d", "e", "f"], edges)
    assert stats["longest_path"] == 3  # a -> b -> c -> d; shared-state edges do not count
    assert stats["weakly_connected_components"] == 2  # f stands alone
    assert stats["edges_by_kind"] == {"data_flow": 3, "pre_post": 1, "shared_state": 1}


def test_layout_places_every_node_in_layers():
    names = ["a", "b", "c", "d"]
    edges = [graph.Edge("a", "b", ["data_flow"], {}), graph.Edge("b", "c", ["pre_post"], {}),
             graph.Edge("c", "a", ["shared_state"], {}), graph.Edge("a", "d", ["data_flow"], {})]
    positions = graph.layout(names, edges)
    assert set(positions) == set(names)
    assert positions["a"]["y"] < positions["b"]["y"] < positions["c"]["y"]
    assert positions["d"]["y"] == positions["b"]["y"]


def test_layout_keeps_a_cyclic_graph_layered_and_wraps_wide_layers():
    names = [f"t{i}" for i in range(30)]
    edges = [graph.Edge("t0", f"t{i}", ["data_flow"], {}) for i in range(1, 30)]
    edges += [graph.Edge(f"t{i}", "t0", ["data_flow"], {}) for i in range(1, 30)]  # every edge in a cycle
    positions = graph.layout(names, edges, max_per_row=9)
    rows = {p["y"] for p in positions.values()}
    assert len(rows) >= 4  # t0 alone, then 29 successors wrapped into rows of at most 9
    assert all(sum(1 for p in positions.values() if p["y"] == y) <= 9 for y in rows)
