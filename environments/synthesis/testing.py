"""Procedural testing of tools: generate cases from contracts, run them in the sandbox, classify.

Expected outcomes come from :func:`contract.evaluate` — the tool's *declared* pre/post-conditions
and exceptions — never from running the tool, so a tool whose code disagrees with its
specification fails. Each case carries its own database instance, stored as a patch over the
domain's fixture state.
"""

from __future__ import annotations

import json
import random
from typing import Any, Callable

from environments.runtime import statekit
from environments.runtime.executor import Sandbox

from .contract import Expected, evaluate
from .spec import DomainSpec, TestCase, ToolSpec
from .values import ValueMaker

MAX_NEGATIVE = 6


def _oracle(domain: DomainSpec, tool: ToolSpec, state: dict[str, Any], args: dict[str, Any]) -> Expected:
    return evaluate(tool.contract, state, args, clock=domain.clock, id_seed=domain.id_seed)


def _column_for_param(domain: DomainSpec, name: str):  # type: ignore[no-untyped-def]
    for table in domain.tables:
        for col in table.columns:
            if col.name == name and col.generator not in ("pk", "fk"):
                return col
    return None


def _valid_value(domain: DomainSpec, schema: dict[str, Any], name: str, rng: random.Random) -> Any:
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type")
    if kind == "integer":
        low = int(schema.get("minimum", 1))
        high = int(schema.get("maximum", low + 4))
        return max(low, min(high, low + rng.randint(0, 2)))
    if kind == "number":
        return round(max(float(schema.get("minimum", 1)), rng.uniform(1, 50)), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    col = _column_for_param(domain, name)
    if col is not None:
        value = ValueMaker(rng, domain.clock).make(col)
        if isinstance(value, str):
            return value
    if schema.get("format") == "date":
        return "2026-04-15"
    return f"{name.replace('_', ' ')} sample"


def _key_params(tool: ToolSpec) -> dict[str, str]:
    """Parameters used as primary keys of loaded rows: param -> table."""
    keys: dict[str, str] = {}
    for step in tool.contract["steps"]:
        if step["op"] == "load" and "param" in step["key"]:
            keys.setdefault(step["key"]["param"], step["table"])
    return keys


def _machine_states(domain: DomainSpec, table: str) -> list[str]:
    t = domain.table(table)
    return list(t.machine["states"]) if t.machine else []


def _row_ref(expected: Expected, alias: str) -> tuple[str, str] | None:
    return (expected.loaded or {}).get(alias)


def _var_parts(expr: dict[str, Any]) -> tuple[str, str] | None:
    if isinstance(expr, dict) and "var" in expr and "." in expr["var"]:
        alias, col = expr["var"].split(".", 1)
        return alias, col
    return None


def _remove_dependents(domain: DomainSpec, state: dict[str, Any], table: str, pks: set[str]) -> None:
    """Delete rows that reference ``pks`` of ``table``, recursively (keeps the state valid)."""
    for child in domain.tables:
        for col in child.columns:
            if col.fk and col.fk["table"] == table:
                doomed = {pk for pk, row in state[child.name].items() if row.get(col.name) in pks}
                if doomed:
                    _remove_dependents(domain, state, child.name, doomed)
                    for pk in doomed:
                        state[child.name].pop(pk, None)


def _satisfy(domain: DomainSpec, state: dict[str, Any], args: dict[str, Any], expected: Expected,
             rng: random.Random) -> bool:
    """Change the state or arguments so that the rejecting declaration holds. False if unknown."""
    step = expected.step or {}
    if step.get("op") != "require":
        return False
    (kind, arg), = step["cond"].items()
    if kind == "any_set":
        return False
    if kind == "no_rows":
        value = args.get(arg["value"].get("param", "")) if "param" in arg["value"] else None
        spared = args.get(arg["except"]["value"].get("param", "")) if "except" in arg else None
        rows = {pk for pk, r in state[arg["table"]].items() if r.get(arg["col"]) == value and pk != spared}
        _remove_dependents(domain, state, arg["table"], rows)
        for pk in rows:
            state[arg["table"]].pop(pk, None)
        return True
    left, right = (arg[0], arg[1]) if isinstance(arg, list) else (None, None)
    lvar = _var_parts(left) if left else None
    rvar = _var_parts(right) if isinstance(right, dict) else None
    if kind in ("in", "not_in") and lvar:
        ref = _row_ref(expected, lvar[0])
        if ref is None:
            return False
        states = _machine_states(domain, ref[0]) or list(right)
        allowed = list(right) if kind == "in" else [s for s in states if s not in right]
        if not allowed:
            return False
        state[ref[0]][ref[1]][lvar[1]] = allowed[0]
        return True
    if kind == "eq" and lvar and "const" in right:
        ref = _row_ref(expected, lvar[0])
        if ref is None:
            return False
        state[ref[0]][ref[1]][lvar[1]] = right["const"]
        return True
    if kind in ("eq", "le") and "param" in left and rvar:
        ref = _row_ref(expected, rvar[0])
        if ref is None:
            return False
        value = state[ref[0]][ref[1]].get(rvar[1])
        if kind == "le" and isinstance(value, (int, float)) and value <= 0:
            state[ref[0]][ref[1]][rvar[1]] = value = 50.0
        args[left["param"]] = value
        return True
    if kind in ("ge", "gt") and lvar and "param" in right:
        ref = _row_ref(expected, lvar[0])
        if ref is None:
            return False
        state[ref[0]][ref[1]][lvar[1]] = (args.get(right["param"]) or 1) + rng.randint(0, 3)
        return True
    return False


def _break(domain: DomainSpec, step: dict[str, Any], state: dict[str, Any], args: dict[str, Any],
           positive: Expected) -> str | None:
    """Mutate a positive case so that one declaration fails. Returns a case name, or None."""
    if step["op"] == "load" and "param" in step["key"]:
        args[step["key"]["param"]] = f"{step['what'].replace(' ', '_')}_missing"
        return f"missing {step['what']}"
    if step["op"] == "validate":
        param = step["param"]
        if "enum" in step:
            args[param] = "not_a_valid_choice"
            return f"invalid {param}"
        if "min" in step and step["type"] in ("integer", "number"):
            args[param] = step["min"] - 1
            return f"{param} below minimum"
        if step["type"] == "datetime":  # what a person would type, not an instant
            args[param] = "tomorrow at 9"
            return f"{param} not a date-time"
        if step["type"] == "date":
            args[param] = "next Tuesday"
            return f"{param} not a date"
        if step["type"] == "string" and not step.get("optional"):
            args[param] = 12345
            return f"{param} of the wrong type"
        return None
    if step["op"] != "require":
        return None
    (kind, arg), = step["cond"].items()
    if kind == "any_set":
        for p in arg:
            args.pop(p, None)
        return "nothing to update"
    if kind == "no_rows":
        value = args.get(arg["value"].get("param", ""))
        source = next(iter(state[arg["table"]].values()), None)
        if source is None or value is None:
            return None
        child = domain.table(arg["table"])
        blocker = statekit.copy_state(source)
        blocker[child.pk] = f"{child.prefix}_blocker"
        blocker[arg["col"]] = value
        state[arg["table"]][blocker[child.pk]] = blocker
        if arg.get("unique"):  # a uniqueness rule: another row already holds the value
            return f"another {arg['table']} row has that {arg['col']}"
        return f"{arg['table']} still reference it"
    left, right = arg
    lvar = _var_parts(left)
    rvar = _var_parts(right) if isinstance(right, dict) else None
    if kind in ("in", "not_in", "eq") and lvar:
        ref = _row_ref(positive, lvar[0])
        if ref is None:
            return None
        states = _machine_states(domain, ref[0])
        allowed = list(right) if kind == "in" else [right["const"]] if kind == "eq" and "const" in right else None
        if kind == "not_in":
            bad = list(right)
        else:
            if allowed is None:
                return None
            bad = [s for s in states if s not in allowed]
        if not bad:
            return None
        state[ref[0]][ref[1]][lvar[1]] = bad[0]
        return f"{lvar[0]} {lvar[1]} is {bad[0]}"
    if kind in ("eq", "le") and "param" in left and rvar:
        ref = _row_ref(positive, rvar[0])
        if ref is None:
            return None
        value = state[ref[0]][ref[1]].get(rvar[1])
        if not isinstance(value, (int, float)):
            return None
        args[left["param"]] = round(value + 1, 2)
        return f"{left['param']} above {rvar[1]}"
    if kind in ("ge", "gt") and lvar and "param" in right:
        ref = _row_ref(positive, lvar[0])
        if ref is None:
            return None
        state[ref[0]][ref[1]][lvar[1]] = max(0, (args.get(right["param"]) or 1) - 1)
        return f"{lvar[0]} {lvar[1]} too low"
    return None


def _expected_dict(case_state: dict[str, Any], expected: Expected) -> dict[str, Any]:
    if expected.outcome == "success":
        return {"outcome": "success", "state_hash": statekit.state_hash(expected.state or {}),
                "value": expected.value, "diff": statekit.diff_states(case_state, expected.state or {})}
    return {"outcome": "anticipated_rejection", "error_type": expected.error_type, "message": expected.message}


def find_positive(domain: DomainSpec, tool: ToolSpec, fixture: dict[str, Any], rng: random.Random,
                   tries: int = 12) -> tuple[dict[str, Any], dict[str, Any], Expected] | None:
    keys = _key_params(tool)
    params = tool.parameters.get("properties", {})
    required = set(tool.parameters.get("required", []))
    for _attempt in range(tries):
        args: dict[str, Any] = {}
        for name, schema in params.items():
            if name in keys:
                pks = sorted(fixture[keys[name]])
                if not pks:
                    break
                args[name] = rng.choice(pks)
            elif name in required or (tool.template in ("update",) and rng.random() < 0.6):
                args[name] = _valid_value(domain, schema, name, rng)
        if tool.template == "update" and not any(k in args for k in params if k not in keys):
            optional = [k for k in params if k not in keys]
            if optional:
                args[optional[0]] = _valid_value(domain, params[optional[0]], optional[0], rng)
        state = statekit.copy_state(fixture)
        for _fix in range(6):
            expected = _oracle(domain, tool, state, args)
            if expected.outcome == "success":
                return state, args, expected
            if not _satisfy(domain, state, args, expected, rng):
                break
    return None


def generate_tests(domain: DomainSpec, tool: ToolSpec, fixture: dict[str, Any]) -> list[TestCase]:
    """At least one positive and one negative case per tool; more where it has more branches."""
    rng = random.Random(f"tests:{domain.seed}:{tool.name}")
    cases: list[TestCase] = []
    found = find_positive(domain, tool, fixture, rng)
    if found is None:
        return cases
    state, args, expected = found
    cases.append(TestCase(tool.name, "positive: valid call", "positive", statekit.diff_states(fixture, state), args,
                          _expected_dict(state, expected)))
    # A second positive case on another row, when the tool reads one (more coverage of data shapes).
    second = find_positive(domain, tool, fixture, random.Random(f"tests2:{domain.seed}:{tool.name}"))
    if second is not None and second[1] != args:
        s2, a2, e2 = second
        cases.append(TestCase(tool.name, "positive: another valid call", "positive", statekit.diff_states(fixture, s2),
                              a2, _expected_dict(s2, e2)))
    # Branches: a partial amount exercises the "balance remains" branch of payment-like tools.
    if tool.template == "pay" and "amount" in args and isinstance(args["amount"], (int, float)) and args["amount"] > 0.02:
        partial = dict(args, amount=round(args["amount"] / 2, 2))
        e3 = _oracle(domain, tool, state, partial)
        if e3.outcome == "success":
            cases.append(TestCase(tool.name, "positive: partial amount", "positive", statekit.diff_states(fixture, state),
                                  partial, _expected_dict(state, e3)))
    negatives = 0
    seen: set[str] = set()
    # Every tool rejects an argument it does not declare (a parameterless tool has no other negative).
    unknown = dict(args, undeclared_argument=1)
    e_unknown = _oracle(domain, tool, state, unknown)
    cases.append(TestCase(tool.name, "negative: undeclared argument", "negative", statekit.diff_states(fixture, state),
                          unknown, _expected_dict(state, e_unknown)))
    negatives += 1
    missing_required = sorted(tool.parameters.get("required", []))
    if missing_required:
        bad_args = {k: v for k, v in args.items() if k != missing_required[0]}
        e = _oracle(domain, tool, state, bad_args)
        if e.outcome == "anticipated_rejection":
            cases.append(TestCase(tool.name, f"negative: missing {missing_required[0]}", "negative",
                                  statekit.diff_states(fixture, state), bad_args, _expected_dict(state, e)))
            negatives += 1

    def declarations(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for s in steps:
            out.append(s)
            if s["op"] == "if":
                out.extend(declarations(s["then"]))
        return out

    # Business rules first, then unknown ids, then argument checks: the budget goes to what matters most.
    priority = {"require": 0, "load": 1, "validate": 2}
    ordered = sorted(declarations(tool.contract["steps"]), key=lambda s: priority.get(s["op"], 3))
    for step in ordered:
        if negatives >= MAX_NEGATIVE:
            break
        if step["op"] not in ("load", "require", "validate"):
            continue
        broken_state = statekit.copy_state(state)
        broken_args = statekit.copy_state(args)
        name = _break(domain, step, broken_state, broken_args, expected)
        if name is None or name in seen:
            continue
        e = _oracle(domain, tool, broken_state, broken_args)
        if e.outcome != "anticipated_rejection":
            continue
        problems = statekit.validate_rows(domain.schema(), broken_state)
        if problems:
            continue
        seen.add(name)
        cases.append(TestCase(tool.name, f"negative: {name}", "negative", statekit.diff_states(fixture, broken_state),
                              broken_args, _expected_dict(broken_state, e)))
        negatives += 1
    return cases


# ---------------------------------------------------------------------------------------------
# Running


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def classify(case: TestCase, result: dict[str, Any]) -> tuple[str, str]:
    """(outcome, message) of one run against the case's expectation (paper §4.1, stage 6)."""
    expected = case.expected
    got = result["outcome"]
    if expected["outcome"] == "success":
        if got != "success":
            return "unexpected_failure", f"expected success, got {got}: {result.get('error_type')}: {result.get('error')}"
        if result.get("state_hash") != expected["state_hash"]:
            return "unexpected_failure", ("state after the call differs from the declared post-conditions: expected "
                                          f"{_short(expected.get('diff'))}, got {_short(result.get('diff'))}")
        if result.get("value") != expected.get("value"):
            return "unexpected_failure", (f"return value differs: expected {_short(expected.get('value'))}, "
                                          f"got {_short(result.get('value'))}")
        return "success", "state and return value match the specification"
    if got == "anticipated_rejection" and result.get("error_type") == expected.get("error_type"):
        return "anticipated_rejection", f"{result.get('error_type')}: {result.get('error')}"
    if got == "success":
        return "unexpected_failure", (f"expected {expected.get('error_type')} ({expected.get('message')}), "
                                      f"but the call succeeded")
    return "unexpected_failure", (f"expected {expected.get('error_type')} ({expected.get('message')}), got "
                                  f"{got}: {result.get('error_type')}: {result.get('error')}")


def run_tests(sandbox: Sandbox, fixture: dict[str, Any], cases: list[TestCase]) -> None:
    """Run every case on its own instance in one streamed batch; record outcome and message."""
    # The sandbox holds the fixture as its initial state: send each instance as a patch over it.
    payload = [{"patch": c.patch, "tool": c.tool, "args": c.args} for c in cases]
    results = sandbox.run_cases(payload)
    for case, result in zip(cases, results):
        case.attempts += 1
        case.outcome, case.message = classify(case, result)
        case.observed = {k: result.get(k) for k in ("outcome", "error_type", "error", "state_hash") if k in result}
        if "stdout" in result:
            case.observed["stdout"] = str(result["stdout"])[:2000]


RepairFn = Callable[[DomainSpec, ToolSpec, list[TestCase]], "str | None"]
