"""Task instantiation by graph expansion on a synthesized domain."""

import networkx as nx
import pytest

from environments.runtime import statekit
from environments.runtime.executor import Sandbox, SandboxConfig
from tasks.audit import ungrounded_arguments
from tasks.instantiation import COMPLEXITY, Instantiator, domain_bundle, view_from_result
from tasks.spec import build_task_spec
from tasks.instantiation.pipeline import complexity_score, gate_score
from tests.conftest import sandbox_mode, synthesized


@pytest.fixture(scope="module")
def built():
    view = view_from_result(synthesized(1001))
    with Sandbox(domain_bundle(view), SandboxConfig(mode=sandbox_mode())) as sandbox:
        inst = Instantiator(view, sandbox)
        drafts = [inst.build(seed, level) for seed, level in zip(range(9), list(COMPLEXITY) * 3)]
        replays = [sandbox.run_sequence(d.gold_chain, state=statekit.copy_state(d.s0), return_state=True) for d in drafts]
        yield view, drafts, replays


def test_seed_chains_have_the_length_of_their_level_and_reference_earlier_outputs(built):
    view, drafts, _ = built
    for d in drafts:
        lo, hi = COMPLEXITY[d.complexity]["length"]
        assert 2 <= len(d.gold_chain) <= hi
        assert any(isinstance(v, dict) and "$ref" in v for s in d.gold_chain[1:] for v in s["args"].values())


def test_s_gt_is_the_gold_chain_executed_on_s0(built):
    _, drafts, replays = built
    for d, run in zip(drafts, replays):
        assert [r["outcome"] for r in run["results"]] == ["success"] * len(d.gold_chain)
        assert run["state_hash"] == statekit.state_hash(d.s_gt)


def test_distractors_are_marked_schema_valid_and_do_not_change_the_gold_run(built):
    view, drafts, _ = built
    assert any(d.distractors for d in drafts)
    hard = [len(d.distractors) for d in drafts if d.complexity == "hard"]
    easy = [len(d.distractors) for d in drafts if d.complexity == "easy"]
    assert max(hard) > max(easy)
    for d in drafts:
        assert statekit.validate_rows(view.schema, d.s0) == []
        for row in d.distractors:
            assert row["pk"] in d.s0[row["table"]]
            assert d.s_gt[row["table"]].get(row["pk"]) == d.s0[row["table"]][row["pk"]]


def test_instructions_state_every_literal_and_vary_in_wording(built):
    view, drafts, _ = built
    for d in drafts:
        assert ungrounded_arguments(build_task_spec(view, d)) == []
        assert d.user_profile["name"]
    openings = {d.instruction.split(" Please")[0] for d in drafts}
    assert len(openings) >= 3


def test_read_only_tasks_carry_what_must_be_communicated(built):
    view, drafts, _ = built
    for d in drafts:
        writes = any(view.tools[s["tool"]].mutates for s in d.gold_chain)
        assert writes or d.communicate_info
        if writes:
            assert statekit.state_hash(d.s_gt) != statekit.state_hash(d.s0)


def test_expansion_admits_only_executable_tools_and_reaches_the_floor(built):
    view, drafts, _ = built
    graph = view.graph()
    component = nx.node_connected_component(graph.to_undirected(), drafts[0].gold_chain[0]["tool"])
    for d in drafts:
        assert {s["tool"] for s in d.gold_chain} <= set(d.subgraph)
        assert d.h_size >= min(20, len(component))
        admitted = {e["tool"] for e in d.expansion if e["outcome"].startswith("success")}
        assert admitted <= set(d.subgraph)
        assert d.c_h == round(complexity_score(graph, set(d.subgraph), __import__("tasks.instantiation.pipeline",
                                                                                 fromlist=["GateSettings"]).GateSettings()), 4)


def test_every_gate_decision_is_recorded_with_its_inputs(built):
    _, drafts, _ = built
    for d in drafts:
        assert d.gate
        for decision in d.gate:
            assert decision["decision"] in ("expand", "floor", "stop")
            if "p" in decision:
                assert decision["p"] == gate_score(decision["unused"], decision["c_h"], decision["g_d"])


def test_the_gate_score_formula():
    assert gate_score(unused=10, c_h=0.2, g_d=1.0) == 0.8
    assert gate_score(unused=2, c_h=0.0, g_d=0.5) == 0.2
    assert gate_score(unused=10, c_h=1.5, g_d=1.0) == 0.0
