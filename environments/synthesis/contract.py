"""Tool contracts: declared pre-conditions, post-conditions and exceptions, as data.

A contract is a list of *steps* (validate, load, require, insert, update, delete, query,
aggregate, count_by, let, if) and a *returns* expression. It is the machine-readable form of a
tool's specification. Two things read it, independently:

* :func:`evaluate` — the **test oracle**: it computes what a call *must* do (the state after and
  the return value, or the exception) from the declaration alone, never by running tool code;
* the procedural code writer (``procedural/codegen.py``), which renders it to Python source.

A tool whose code disagrees with its contract therefore fails its procedural tests, whoever wrote
the code (the procedural generator or an LLM).

Dates: a ``validate`` step of type ``date`` takes exactly ``YYYY-MM-DD``; type ``datetime`` takes
an ISO 8601 date-time with a time and a time zone (``Z`` or ``±hh:mm``) and nothing else. The
expression ``{"instant": expr}`` stores such a value normalized to UTC ``YYYY-MM-DDTHH:MM:SSZ``,
and the query comparison ``on_date`` keeps the rows whose date-time falls on a given UTC day.

Some keys only describe: ``when`` on an ``if`` step, ``refuses`` on a ``require`` step (how a tool
description says the rule) and the contract's ``subject`` (what the tool is about, for task
builders: see ``procedural.generator.subject``). Neither the oracle nor the code writer reads them.
"""

from __future__ import annotations

import copy
import datetime as _dt
import re
from dataclasses import dataclass
from typing import Any

from environments.runtime.statekit import ToolContext, copy_state

DEFAULT_ERRORS = ("ValueError", "KeyError")


class ContractError(Exception):
    """The contract itself is malformed (a synthesis bug, not a tool failure)."""


class _Declared(Exception):
    def __init__(self, error_type: str, message: str, step: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.step = step


@dataclass
class Expected:
    outcome: str  # "success" | "anticipated_rejection"
    state: dict[str, Any] | None = None
    value: Any = None
    error_type: str | None = None
    message: str | None = None
    step: dict[str, Any] | None = None  # the declaration that rejected the call
    loaded: dict[str, tuple[str, str]] | None = None  # alias -> (table, primary key) of loaded rows


# ---------------------------------------------------------------------------------------------
# Dates and instants
#
# A date is exactly ``YYYY-MM-DD``. A date-time must carry a time and a time zone (``Z`` or
# ``±hh:mm``), so an instant is never ambiguous; it is stored normalized to UTC,
# ``YYYY-MM-DDTHH:MM:SSZ``, so equal instants are equal strings and a calendar day is a prefix.

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})")


def is_date(value: Any) -> bool:
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        return False
    try:
        _dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def utc_instant(value: Any) -> str | None:
    """``value`` as a UTC ``YYYY-MM-DDTHH:MM:SSZ`` string, or None when it is not a zoned date-time."""
    if not isinstance(value, str) or not _DATE_TIME_RE.fullmatch(value):
        return None
    try:
        moment = _dt.datetime.fromisoformat(value.upper()).astimezone(_dt.UTC)
    except (ValueError, OverflowError):
        return None
    return moment.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def utc_day(value: Any) -> str | None:
    """The UTC calendar day of a stored date-time (None when it is not one)."""
    instant = utc_instant(value)
    return instant[:10] if instant else None


# ---------------------------------------------------------------------------------------------
# Expressions and conditions


def _get_var(variables: dict[str, Any], path: str) -> Any:
    head, _, rest = path.partition(".")
    if head not in variables:
        raise ContractError(f"unknown variable {head!r}")
    value = variables[head]
    for part in rest.split(".") if rest else ():
        value = value.get(part) if isinstance(value, dict) else None
    return value


def eval_expr(expr: Any, args: dict[str, Any], variables: dict[str, Any], ctx: ToolContext) -> Any:
    if not isinstance(expr, dict) or len(expr) != 1:
        raise ContractError(f"bad expression {expr!r}")
    (kind, arg), = expr.items()
    if kind == "param":
        return args.get(arg)
    if kind == "const":
        return copy.deepcopy(arg)
    if kind == "now":
        return ctx.now_iso()
    if kind == "today":
        return ctx.today()
    if kind == "new_id":
        return ctx.new_id(arg)
    if kind == "var":
        value = _get_var(variables, arg)
        return copy_state(value) if isinstance(value, (dict, list)) else value
    if kind in ("add", "sub", "mul"):
        a, b = (eval_expr(e, args, variables, ctx) for e in arg)
        return a + b if kind == "add" else a - b if kind == "sub" else a * b
    if kind == "round":
        value, digits = eval_expr(arg[0], args, variables, ctx), arg[1]
        return round(value, digits)
    if kind == "coalesce":
        for e in arg:
            value = eval_expr(e, args, variables, ctx)
            if value is not None:
                return value
        return None
    if kind == "ratio":  # a / b rounded to 4 places, 0.0 when b == 0
        a, b = (eval_expr(e, args, variables, ctx) for e in arg)
        return round(a / b, 4) if b else 0.0
    if kind == "instant":  # a validated date-time, normalized to UTC (None stays None)
        value = eval_expr(arg, args, variables, ctx)
        return None if value is None else utc_instant(value)
    raise ContractError(f"unknown expression kind {kind!r}")


def eval_cond(cond: dict[str, Any], args: dict[str, Any], variables: dict[str, Any], db: dict[str, Any],
              ctx: ToolContext) -> bool:
    (kind, arg), = cond.items()
    if kind == "and":
        return all(eval_cond(c, args, variables, db, ctx) for c in arg)
    if kind in ("in", "not_in"):
        value = eval_expr(arg[0], args, variables, ctx)
        return (value in arg[1]) == (kind == "in")
    if kind in ("eq", "ne", "gt", "ge", "lt", "le"):
        a, b = (eval_expr(e, args, variables, ctx) for e in arg)
        if kind in ("eq", "ne"):
            return (a == b) == (kind == "eq")
        if a is None or b is None:
            return False
        return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[kind]
    if kind in ("is_null", "not_null"):
        return (eval_expr(arg, args, variables, ctx) is None) == (kind == "is_null")
    if kind == "any_set":
        return any(args.get(p) is not None for p in arg)
    if kind == "no_rows":  # no row has col == value (other than the row named by "except", if given)
        value = eval_expr(arg["value"], args, variables, ctx)
        rows = db[arg["table"]].values()
        if "except" in arg:
            spared = eval_expr(arg["except"]["value"], args, variables, ctx)
            rows = [r for r in rows if r.get(arg["except"]["col"]) != spared]
        return not any(row.get(arg["col"]) == value for row in rows)
    raise ContractError(f"unknown condition kind {kind!r}")


# ---------------------------------------------------------------------------------------------
# Steps


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "date":
        return is_date(value)
    if kind == "datetime":
        return utc_instant(value) is not None
    raise ContractError(f"unknown parameter type {kind!r}")


TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
              "date": "a date such as 2026-03-10", "datetime": "a date-time such as 2026-03-10T09:00:00Z"}


def _run_steps(steps: list[dict[str, Any]], db: dict[str, Any], args: dict[str, Any],
               variables: dict[str, Any], ctx: ToolContext) -> None:
    for step in steps:
        op = step["op"]
        if op == "validate":
            value = args.get(step["param"])
            if value is None:
                if step.get("optional"):
                    continue
                raise _Declared("ValueError", f"{step['param']} is required", step)
            if not _type_ok(step["type"], value):
                raise _Declared("ValueError", f"{step['param']} must be {TYPE_WORDS[step['type']]}", step)
            if "enum" in step and value not in step["enum"]:
                raise _Declared("ValueError", f"{step['param']} must be one of {', '.join(step['enum'])}")
            if "min" in step and value < step["min"]:
                raise _Declared("ValueError", f"{step['param']} must be at least {step['min']}")
            if "max" in step and value > step["max"]:
                raise _Declared("ValueError", f"{step['param']} must be at most {step['max']}")
            if "min_length" in step and len(value.strip()) < step["min_length"]:
                raise _Declared("ValueError", f"{step['param']} must not be empty")
        elif op == "load":
            key = eval_expr(step["key"], args, variables, ctx)
            row = db[step["table"]].get(key) if isinstance(key, str) else None
            if row is None:
                raise _Declared("KeyError", f"{step['what']} {key} not found", step)
            variables[step["as"]] = row
            variables.setdefault("__loaded__", {})[step["as"]] = (step["table"], key)
        elif op == "require":
            if not eval_cond(step["cond"], args, variables, db, ctx):
                raise _Declared(step.get("error", "ValueError"), step["message"], step)
        elif op == "let":
            variables[step["as"]] = eval_expr(step["value"], args, variables, ctx)
        elif op == "insert":
            row = {col: eval_expr(e, args, variables, ctx) for col, e in step["values"].items()}
            db[step["table"]][row[step["pk"]]] = row
            variables[step["as"]] = row
        elif op == "update":
            row = variables[step["target"]]
            new_values = {col: eval_expr(e, args, variables, ctx) for col, e in step["set"].items()}
            for col, value in new_values.items():
                if value is None and step.get("skip_none", False):
                    continue
                row[col] = value
        elif op == "delete":
            row = variables[step["target"]]
            del db[step["table"]][row[step["pk"]]]
        elif op == "query":
            items = list(db[step["table"]].values())
            for where in step.get("where", []):
                value = eval_expr(where["value"], args, variables, ctx)
                if value is None and where.get("skip_if_none", True):
                    continue
                col, cmp = where["col"], where["cmp"]
                if cmp == "eq":
                    items = [r for r in items if r.get(col) == value]
                elif cmp == "contains":
                    needle = str(value).lower()
                    items = [r for r in items if needle in str(r.get(col) or "").lower()]
                elif cmp == "ge":
                    items = [r for r in items if r.get(col) is not None and r.get(col) >= value]
                elif cmp == "le":
                    items = [r for r in items if r.get(col) is not None and r.get(col) <= value]
                elif cmp == "on_date":  # the row's date-time falls on this UTC calendar day
                    items = [r for r in items if utc_day(r.get(col)) == value]
                else:
                    raise ContractError(f"unknown comparison {cmp!r}")
            items.sort(key=lambda r: (str(r.get(step["order_by"])), str(r.get(step["pk"]))))
            if step.get("limit") is not None:
                limit = eval_expr(step["limit"], args, variables, ctx)
                if limit is not None:
                    items = items[:limit]
            variables[step["as"]] = items
        elif op == "aggregate":
            values = [r.get(step["col"]) for r in variables[step["source"]]] if step["fn"] != "count" else []
            values = [v for v in values if v is not None]
            fn = step["fn"]
            if fn == "count":
                result: Any = len(variables[step["source"]])
            elif fn == "sum":
                result = round(sum(values), 2)
            elif fn == "avg":
                result = round(sum(values) / len(values), 2) if values else 0.0
            else:
                raise ContractError(f"unknown aggregate {fn!r}")
            variables[step["as"]] = result
        elif op == "count_by":
            counts: dict[str, int] = {}
            for r in variables[step["source"]]:
                key = str(r.get(step["col"]))
                counts[key] = counts.get(key, 0) + 1
            variables[step["as"]] = dict(sorted(counts.items()))
        elif op == "if":
            if eval_cond(step["cond"], args, variables, db, ctx):
                _run_steps(step["then"], db, args, variables, ctx)
        else:
            raise ContractError(f"unknown step {op!r}")


def render_return(spec: Any, args: dict[str, Any], variables: dict[str, Any], ctx: ToolContext) -> Any:
    (kind, arg), = spec.items()
    if kind == "items":
        items = [dict(r) for r in variables[arg]]
        return {"items": items, "count": len(items)}
    if kind == "object":
        return {k: eval_expr(e, args, variables, ctx) for k, e in arg.items()}
    return eval_expr(spec, args, variables, ctx)


def evaluate(contract: dict[str, Any], state: dict[str, Any], args: dict[str, Any], *, clock: str,
             id_seed: int) -> Expected:
    """What a call with ``args`` on ``state`` must do, according to the contract alone."""
    declared = set(contract["params"])
    unknown = sorted(set(args) - declared)
    missing = sorted(p for p in contract.get("required", []) if p not in args)
    if unknown or missing:
        detail = f"unexpected argument(s) {', '.join(unknown)}" if unknown else f"missing {', '.join(missing)}"
        return Expected("anticipated_rejection", error_type="InvalidArguments", message=detail)
    db = copy_state(state)  # JSON round trip: several times faster than deepcopy
    ctx = ToolContext(clock, id_seed)
    variables: dict[str, Any] = {}
    full_args = {p: args.get(p, spec.get("default")) for p, spec in contract["params"].items()}
    try:
        _run_steps(contract["steps"], db, full_args, variables, ctx)
        value = render_return(contract["returns"], full_args, variables, ctx)
    except _Declared as exc:
        return Expected("anticipated_rejection", error_type=exc.error_type, message=exc.message, step=exc.step,
                        loaded=dict(variables.get("__loaded__", {})))
    return Expected("success", state=db, value=value, loaded=dict(variables.get("__loaded__", {})))


def contract_tables(contract: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(tables read, tables written) by a contract."""
    reads: set[str] = set()
    writes: set[str] = set()
    aliases: dict[str, str] = {}

    def walk(steps: list[dict[str, Any]]) -> None:
        for step in steps:
            op = step["op"]
            if op in ("load", "query"):
                reads.add(step["table"])
                aliases[step["as"]] = step["table"]
            elif op in ("insert", "update", "delete"):
                writes.add(step.get("table") or aliases.get(step.get("target", ""), ""))
            elif op == "require":
                _cond_tables(step["cond"])
            elif op == "if":
                walk(step["then"])

    def _cond_tables(cond: dict[str, Any]) -> None:
        (kind, arg), = cond.items()
        if kind == "no_rows":
            reads.add(arg["table"])
        elif kind == "and":
            for c in arg:
                _cond_tables(c)

    walk(contract["steps"])
    writes.discard("")
    return reads, writes
