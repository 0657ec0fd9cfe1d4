"""Dates and date-times are checked and normalized by the contract and by the code, and no call that
the JSON Schema allows breaks a tool (random schema-valid calls in the real sandbox)."""

from __future__ import annotations

import random

import pytest

from environments.runtime import statekit
from environments.runtime.codecheck import check_tool_code
from environments.runtime.executor import Sandbox, SandboxConfig
from environments.synthesis.contract import evaluate, utc_instant
from environments.synthesis.pipeline import _bundle
from environments.synthesis.procedural.codegen import render_tool
from environments.synthesis.schema_calls import (
    Pools,
    check_schema_valid,
    is_rfc3339_date_time,
    random_args,
    run_random_calls,
)
from environments.synthesis.testing import find_positive
from tests.conftest import sandbox_mode, synthesized


@pytest.mark.parametrize("value, instant", [
    ("2026-03-10T09:00:00Z", "2026-03-10T09:00:00Z"),
    ("2026-03-10T09:00:00+00:00", "2026-03-10T09:00:00Z"),
    ("2026-03-10T11:30:00+02:30", "2026-03-10T09:00:00Z"),
    ("2026-03-09T23:00:00-10:00", "2026-03-10T09:00:00Z"),
    ("2026-03-10t09:00:00.123456789z", "2026-03-10T09:00:00Z"),
    ("2026-03-10T09:00Z", "2026-03-10T09:00:00Z"),
    ("tomorrow at 9", None), ("2026-03-10", None), ("2026-03-10T09:00:00", None), ("2026-03-10 09:00:00Z", None),
    ("2026-02-30T09:00:00Z", None), ("2026-03-10T24:00:00Z", None), ("0001-01-01T00:00:00+01:00", None),
    ("20260310T090000Z", None), (20260310, None),
])
def test_a_date_time_needs_a_time_and_a_zone_and_is_normalized_to_utc(value, instant):
    assert utc_instant(value) == instant


def datetime_tool(result, template: str):  # type: ignore[no-untyped-def]
    for tool in result.spec.tools:
        fmt = [p for p, s in tool.parameters["properties"].items() if s.get("format") == "date-time"]
        if tool.template == template and fmt:
            return tool, fmt[0]
    raise AssertionError(f"no {template} tool with a date-time parameter")


def case_for(result, tool, param: str, value: str):  # type: ignore[no-untyped-def]
    spec = result.spec
    found = find_positive(spec, tool, spec.fixture, random.Random(3))
    assert found is not None
    state, args, _expected = found
    return {"patch": statekit.diff_states(spec.fixture, state), "tool": tool.name, "args": dict(args, **{param: value})}


@pytest.fixture(scope="module")
def domain_sandbox():
    result = synthesized(1001)
    with Sandbox(_bundle(result.spec, result.spec.tools), SandboxConfig(mode=sandbox_mode())) as sandbox:
        yield result, sandbox


def test_in_the_sandbox_a_spoken_time_is_refused_and_an_offset_is_stored_as_z(domain_sandbox):
    result, sandbox = domain_sandbox
    tool, param = datetime_tool(result, "create")
    spoken, offset = sandbox.run_cases([case_for(result, tool, param, "tomorrow at 9"),
                                        case_for(result, tool, param, "2026-03-10T09:00:00+00:00")])
    assert spoken["outcome"] == "anticipated_rejection" and spoken["error_type"] == "ValueError"
    assert "must be a date-time such as 2026-03-10T09:00:00Z" in spoken["error"]
    assert offset["outcome"] == "success", offset
    table = tool.contract["subject"]["table"]
    (row,) = offset["diff"][table]["added"].values()
    assert row[param] == "2026-03-10T09:00:00Z"
    # The oracle says the same, from the contract alone.
    case = case_for(result, tool, param, "2026-03-10T11:00:00+02:00")
    expected = evaluate(tool.contract, statekit.apply_diff(result.spec.fixture, case["patch"]), case["args"],
                        clock=result.spec.clock, id_seed=result.spec.id_seed)
    assert expected.outcome == "success" and expected.value[param] == "2026-03-10T09:00:00Z"


def test_an_update_normalizes_the_new_instant_too():
    result = synthesized(1014)  # its update_care_slot changes a start time
    tool, param = datetime_tool(result, "update")
    with Sandbox(_bundle(result.spec, [tool]), SandboxConfig(mode=sandbox_mode())) as sandbox:
        out, spoken = sandbox.run_cases([case_for(result, tool, param, "2026-03-10T04:00:00-05:00"),
                                         case_for(result, tool, param, "tomorrow at 9")])
    assert out["outcome"] == "success", out
    assert out["value"][param] == "2026-03-10T09:00:00Z"
    assert spoken["outcome"] == "anticipated_rejection"


def test_the_day_filter_of_a_resource_search_matches_the_utc_day(domain_sandbox):
    result, sandbox = domain_sandbox
    search = next(t for t in result.spec.tools if t.template == "search"
                  and any(s["cmp"] == "on_date" for s in t.contract["subject"]["filters"].values()))
    param, spec = next((p, s) for p, s in search.contract["subject"]["filters"].items() if s["cmp"] == "on_date")
    rows = result.spec.fixture[search.contract["subject"]["table"]]
    day = min(rows.values(), key=lambda r: r[spec["col"]])[spec["col"]][:10]
    wanted = sorted(pk for pk, r in rows.items() if r[spec["col"]][:10] == day)
    (out,) = sandbox.run_cases([{"patch": {}, "tool": search.name, "args": {param: day, "limit": 100}}])
    pk = result.spec.table(search.contract["subject"]["table"]).pk
    assert sorted(r[pk] for r in out["value"]["items"]) == wanted
    (bad,) = sandbox.run_cases([{"patch": {}, "tool": search.name, "args": {param: "next Tuesday"}}])
    assert bad["outcome"] == "anticipated_rejection"


def test_rendered_date_helpers_pass_the_code_check():
    result = synthesized(1001)
    for tool in result.spec.tools:
        code = render_tool(tool.name, tool.description, tool.contract)
        assert check_tool_code(code, tool.name) == []
        uses = any(s.get("format") in ("date", "date-time") for s in tool.parameters["properties"].values())
        assert ("def _instant(" in code) == uses, tool.name


def test_drawn_arguments_are_valid_for_the_schema_with_strict_formats():
    result = synthesized(1002)
    rng = random.Random(5)
    pools = Pools.from_state(result.spec.fixture)
    for tool in result.spec.tools:
        for _ in range(20):
            args = random_args({"parameters": tool.parameters, "contract": tool.contract}, rng, pools)
            assert check_schema_valid(tool.parameters, args) == [], (tool.name, args)
    # Strict formats: what the schema forbids is not drawn.
    assert not is_rfc3339_date_time("tomorrow at 9") and not is_rfc3339_date_time("2026-03-10T09:00Z")
    assert check_schema_valid({"type": "object", "properties": {"d": {"type": "string", "format": "date-time"}}},
                              {"d": "tomorrow at 9"})


@pytest.mark.parametrize("seed", [1001, 1002, 1003, 1086])
def test_random_schema_valid_calls_never_end_as_unexpected_failures(seed):
    result = synthesized(seed)
    spec = result.spec
    verified = [t for t in spec.tools if result.tool_status[t.name]["status"] == "verified"]
    tools = [{"name": t.name, "parameters": t.parameters, "contract": t.contract} for t in verified]
    with Sandbox(_bundle(spec, verified), SandboxConfig(mode=sandbox_mode())) as sandbox:
        report = run_random_calls(sandbox, tools, spec.fixture, calls=250, seed=seed)
    assert report.invalid_args == 0
    assert report.calls == 250
    assert report.outcomes["unexpected_failure"] == 0, report.failures[:3]
    assert report.outcomes["success"] > 100 and report.outcomes["anticipated_rejection"] > 10
