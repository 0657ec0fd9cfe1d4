"""Procedural tests: expectations come from declarations, so wrong code is caught; repair loop."""

from dataclasses import replace

import pytest

from environments.runtime.executor import SandboxConfig
from environments.synthesis.contract import evaluate
from environments.synthesis.interface import get_backend
from environments.synthesis.pipeline import synthesize_domain
from environments.synthesis.procedural.backend import ProceduralBackend
from tests.conftest import sandbox_mode, synthesized


def test_every_tool_has_a_positive_and_a_negative_case_with_an_outcome():
    result = synthesized(1001)
    by_tool = {}
    for case in result.tests:
        by_tool.setdefault(case.tool, []).append(case)
        assert case.outcome in ("success", "anticipated_rejection", "unexpected_failure")
        assert case.message
    for tool in result.spec.tools:
        kinds = {c.kind for c in by_tool[tool.name]}
        assert kinds == {"positive", "negative"}, tool.name
    assert all(c.outcome != "unexpected_failure" for c in result.tests)


def test_tools_with_more_branches_get_more_cases():
    result = synthesized(1001)
    counts = {}
    for case in result.tests:
        counts[case.tool] = counts.get(case.tool, 0) + 1
    tools = {t.name: t for t in result.spec.tools}
    action = max((t for t in tools.values() if t.kind == "action"), key=lambda t: len(t.raises))
    getter = next(t for t in tools.values() if t.template == "get")
    assert counts[action.name] > counts[getter.name]


def test_expected_outcomes_come_from_the_contract_not_from_running_the_tool():
    result = synthesized(1001)
    from environments.runtime.statekit import apply_diff, state_hash

    for case in result.tests[:60]:
        tool = result.spec.tool(case.tool)
        state = apply_diff(result.spec.fixture, case.patch)
        expected = evaluate(tool.contract, state, case.args, clock=result.spec.clock, id_seed=result.spec.id_seed)
        assert expected.outcome == case.expected["outcome"]
        if expected.outcome == "success":
            assert state_hash(expected.state) == case.expected["state_hash"]


class WrongCodeBackend(ProceduralBackend):
    """Writes code that disagrees with the spec for one tool; optionally repairs it."""

    def __init__(self, victim_template: str, can_repair: bool) -> None:
        super().__init__()
        self.victim_template = victim_template
        self.can_repair = can_repair
        self.repair_calls = 0
        self.victim = None

    def write_code(self, domain, tool):
        code = super().write_code(domain, tool)
        if self.victim is None and tool.template == self.victim_template:
            self.victim = tool.name
            # Off by one: book one place more than asked (the declared post-condition says quantity).
            code = code.replace("- quantity)", "- quantity - 1)")
            assert "quantity - 1" in code
        return code

    def repair(self, domain, tool, failures):
        self.repair_calls += 1
        assert failures and all(f.outcome == "unexpected_failure" for f in failures)
        return super().repair(domain, tool, failures) if self.can_repair else None


@pytest.fixture
def strict_config():
    return SandboxConfig(mode=sandbox_mode())


def test_a_tool_whose_code_disagrees_with_its_spec_fails_and_leaves_the_graph(strict_config):
    backend = WrongCodeBackend("book", can_repair=False)
    result = synthesize_domain(1004, backend, strict_config, repair_rounds=3)
    status = result.tool_status[backend.victim]
    assert status["status"] == "failed"
    assert "state after the call differs from the declared post-conditions" in status["reason"]
    assert backend.repair_calls == 1  # asked once; the procedural backend could not fix it
    assert all(backend.victim not in (e.src, e.dst) for e in result.edges)
    assert backend.victim not in result.layout


def test_the_repair_loop_reruns_repaired_tools(strict_config):
    backend = WrongCodeBackend("book", can_repair=True)
    result = synthesize_domain(1004, backend, strict_config, repair_rounds=3)
    status = result.tool_status[backend.victim]
    assert (status["status"], status["repairs"]) == ("verified", 1)
    cases = [c for c in result.tests if c.tool == backend.victim]
    assert all(c.outcome != "unexpected_failure" for c in cases)
    assert max(c.attempts for c in cases) == 2


def test_repairs_stop_at_the_cap(strict_config):
    class Stubborn(WrongCodeBackend):
        def repair(self, domain, tool, failures):
            self.repair_calls += 1
            return tool.code + f"\n# attempt {self.repair_calls}\n"  # changes the code, fixes nothing

    backend = Stubborn("book", can_repair=False)
    result = synthesize_domain(1004, backend, strict_config, repair_rounds=2)
    assert backend.repair_calls == 2
    status = result.tool_status[backend.victim]
    assert status["status"] == "failed" and "after 2 repair round(s)" in status["reason"]


def test_code_that_does_not_parse_or_never_ends_is_recorded_per_tool(strict_config):
    class Broken(ProceduralBackend):
        def write_code(self, domain, tool):
            code = super().write_code(domain, tool)
            if tool.template == "get" and not hasattr(self, "syntax_victim"):
                self.syntax_victim = tool.name
                return code.replace("def ", "def (", 1)
            if tool.template == "search" and not hasattr(self, "loop_victim"):
                self.loop_victim = tool.name
                head, sep, rest = code.partition(f"def {tool.name}(")
                signature, newline, body = rest.partition("\n")
                return head + sep + signature + newline + "    while True:\n        pass\n" + body
            return code

        def repair(self, domain, tool, failures):
            return None

    backend = Broken()
    result = synthesize_domain(1006, backend, replace(strict_config, call_timeout=0.5), repair_rounds=1)
    syntax = result.tool_status[backend.syntax_victim]
    loop = result.tool_status[backend.loop_victim]
    assert syntax["status"] == "failed" and "syntax error" in syntax["reason"]
    assert loop["status"] == "failed" and "did not finish within" in loop["reason"]
    others = [s for n, s in result.tool_status.items() if n not in (backend.syntax_victim, backend.loop_victim)]
    assert all(s["status"] == "verified" for s in others)


def test_fault_injection_is_caught_and_repaired_by_regeneration(strict_config):
    result = synthesize_domain(1007, get_backend("procedural", fault_rate=0.3), strict_config)
    assert result.counters["repairs"] > 0
    assert result.counters["tools_verified"] == result.counters["tools_total"]
