"""Render a tool contract to Python source that follows the runtime contract (docs/design.md, "Runtime contract").

The rendered code is ordinary, readable tool code (what an LLM would be asked to write); it goes
through the same AST check and sandbox as LLM-written code.
"""

from __future__ import annotations

from typing import Any

from ..contract import TYPE_WORDS, ContractError

_TYPE_CHECKS = {
    "string": "isinstance({v}, str)",
    "integer": "isinstance({v}, int) and not isinstance({v}, bool)",
    "number": "isinstance({v}, (int, float)) and not isinstance({v}, bool)",
    "boolean": "isinstance({v}, bool)",
    "date": "_is_date({v})",
    "datetime": "_instant({v}) is not None",
}

# Helpers a tool's source carries when it needs them (the sandbox gives tools nothing else).
_DATE_HELPERS = '''import datetime
import re

_DATE = r"\\d{4}-\\d{2}-\\d{2}"
_DATE_TIME = r"\\d{4}-\\d{2}-\\d{2}[Tt]\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?([Zz]|[+-]\\d{2}:\\d{2})"


def _is_date(value):
    """True for a real calendar date written YYYY-MM-DD."""
    if not isinstance(value, str) or not re.fullmatch(_DATE, value):
        return False
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _instant(value):
    """A date-time with a time zone as UTC YYYY-MM-DDTHH:MM:SSZ; None when it is not one."""
    if not isinstance(value, str) or not re.fullmatch(_DATE_TIME, value):
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        moment = moment.astimezone(datetime.timezone.utc)
    except (ValueError, OverflowError):
        return None
    return moment.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def _utc_day(value):
    """The UTC calendar day of a stored date-time, or None."""
    instant = _instant(value)
    return instant[:10] if instant else None


'''


def _lit(value: Any) -> str:
    return repr(value)


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)


_ROWS: set[str] = set()  # aliases bound to rows in the tool being rendered (copied on return)


def expr(e: Any) -> str:
    if not isinstance(e, dict) or len(e) != 1:
        raise ContractError(f"bad expression {e!r}")
    (kind, arg), = e.items()
    if kind == "param":
        return arg
    if kind == "const":
        return _lit(arg)
    if kind == "now":
        return "ctx.now_iso()"
    if kind == "today":
        return "ctx.today()"
    if kind == "new_id":
        return f"ctx.new_id({_lit(arg)})"
    if kind == "var":
        head, _, rest = arg.partition(".")
        if not rest:
            return f"dict({head})" if head in _ROWS else head
        return f"{head}[{_lit(rest)}]" if "." not in rest else f"{head}{''.join(f'[{_lit(p)}]' for p in rest.split('.'))}"
    if kind in ("add", "sub", "mul"):
        op = {"add": "+", "sub": "-", "mul": "*"}[kind]
        return f"({expr(arg[0])} {op} {expr(arg[1])})"
    if kind == "round":
        return f"round({expr(arg[0])}, {arg[1]})"
    if kind == "coalesce":
        first, second = arg
        return f"({expr(first)} if {expr(first)} is not None else {expr(second)})"
    if kind == "ratio":
        return f"(round({expr(arg[0])} / {expr(arg[1])}, 4) if {expr(arg[1])} else 0.0)"
    if kind == "instant":
        return f"_instant({expr(arg)})"
    raise ContractError(f"unknown expression kind {kind!r}")


def cond(c: dict[str, Any]) -> str:
    (kind, arg), = c.items()
    if kind == "and":
        return " and ".join(f"({cond(x)})" for x in arg)
    if kind == "in":
        return f"{expr(arg[0])} in {_lit(tuple(arg[1]))}"
    if kind == "not_in":
        return f"{expr(arg[0])} not in {_lit(tuple(arg[1]))}"
    if kind in ("eq", "ne"):
        return f"{expr(arg[0])} {'==' if kind == 'eq' else '!='} {expr(arg[1])}"
    if kind in ("gt", "ge", "lt", "le"):
        op = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}[kind]
        a, b = expr(arg[0]), expr(arg[1])
        guards = [f"{x} is not None" for x, e in ((a, arg[0]), (b, arg[1])) if "const" not in e]
        return " and ".join([*guards, f"{a} {op} {b}"])
    if kind == "is_null":
        return f"{expr(arg)} is None"
    if kind == "not_null":
        return f"{expr(arg)} is not None"
    if kind == "any_set":
        return "(" + " or ".join(f"{p} is not None" for p in arg) + ")"
    if kind == "no_rows":
        spared = (f" and r.get({_lit(arg['except']['col'])}) != {expr(arg['except']['value'])}"
                  if "except" in arg else "")
        return (f"not any(r.get({_lit(arg['col'])}) == {expr(arg['value'])}{spared} "
                f"for r in db[{_lit(arg['table'])}].values())")
    raise ContractError(f"unknown condition kind {kind!r}")


def _steps(w: _Writer, steps: list[dict[str, Any]], depth: int) -> None:
    for step in steps:
        op = step["op"]
        if op == "validate":
            p = step["param"]
            inner = depth
            if step.get("optional"):
                w.emit(depth, f"if {p} is not None:")
                inner = depth + 1
            else:
                w.emit(depth, f"if {p} is None:")
                w.emit(depth + 1, f"raise ValueError({_lit(p + ' is required')})")
            w.emit(inner, f"if not ({_TYPE_CHECKS[step['type']].format(v=p)}):")
            w.emit(inner + 1, f"raise ValueError({_lit(p + ' must be ' + TYPE_WORDS[step['type']])})")
            if "enum" in step:
                w.emit(inner, f"if {p} not in {_lit(tuple(step['enum']))}:")
                w.emit(inner + 1, f"raise ValueError({_lit(p + ' must be one of ' + ', '.join(step['enum']))})")
            if "min" in step:
                w.emit(inner, f"if {p} < {_lit(step['min'])}:")
                w.emit(inner + 1, f"raise ValueError({_lit(p + ' must be at least ' + str(step['min']))})")
            if "max" in step:
                w.emit(inner, f"if {p} > {_lit(step['max'])}:")
                w.emit(inner + 1, f"raise ValueError({_lit(p + ' must be at most ' + str(step['max']))})")
            if "min_length" in step:
                w.emit(inner, f"if len({p}.strip()) < {step['min_length']}:")
                w.emit(inner + 1, f"raise ValueError({_lit(p + ' must not be empty')})")
        elif op == "load":
            alias, table = step["as"], step["table"]
            w.emit(depth, f"{alias}_key = {expr(step['key'])}")
            w.emit(depth, f"{alias} = db[{_lit(table)}].get({alias}_key) if isinstance({alias}_key, str) else None")
            w.emit(depth, f"if {alias} is None:")
            w.emit(depth + 1, f"raise KeyError(f\"{step['what']} {{{alias}_key}} not found\")")
        elif op == "require":
            w.emit(depth, f"if not ({cond(step['cond'])}):")
            w.emit(depth + 1, f"raise {step.get('error', 'ValueError')}({_lit(step['message'])})")
        elif op == "let":
            w.emit(depth, f"{step['as']} = {expr(step['value'])}")
        elif op == "insert":
            alias = step["as"]
            w.emit(depth, f"{alias} = {{")
            for col, e in step["values"].items():
                w.emit(depth + 1, f"{_lit(col)}: {expr(e)},")
            w.emit(depth, "}")
            w.emit(depth, f"db[{_lit(step['table'])}][{alias}[{_lit(step['pk'])}]] = {alias}")
        elif op == "update":
            target = step["target"]
            for col, e in step["set"].items():
                if step.get("skip_none"):
                    w.emit(depth, f"if {expr(e)} is not None:")
                    w.emit(depth + 1, f"{target}[{_lit(col)}] = {expr(e)}")
                else:
                    w.emit(depth, f"{target}[{_lit(col)}] = {expr(e)}")
        elif op == "delete":
            w.emit(depth, f"del db[{_lit(step['table'])}][{step['target']}[{_lit(step['pk'])}]]")
        elif op == "query":
            alias = step["as"]
            w.emit(depth, f"{alias} = list(db[{_lit(step['table'])}].values())")
            for where in step.get("where", []):
                value = expr(where["value"])
                col = _lit(where["col"])
                inner = depth
                if where.get("skip_if_none", True):
                    w.emit(depth, f"if {value} is not None:")
                    inner = depth + 1
                if where["cmp"] == "eq":
                    w.emit(inner, f"{alias} = [r for r in {alias} if r.get({col}) == {value}]")
                elif where["cmp"] == "contains":
                    w.emit(inner, f"{alias} = [r for r in {alias} if str({value}).lower() in str(r.get({col}) or '').lower()]")
                elif where["cmp"] == "on_date":
                    w.emit(inner, f"{alias} = [r for r in {alias} if _utc_day(r.get({col})) == {value}]")
                elif where["cmp"] in ("ge", "le"):
                    op_text = ">=" if where["cmp"] == "ge" else "<="
                    w.emit(inner, f"{alias} = [r for r in {alias} if r.get({col}) is not None and r.get({col}) {op_text} {value}]")
                else:
                    raise ContractError(f"unknown comparison {where['cmp']!r}")
            w.emit(depth, f"{alias}.sort(key=lambda r: (str(r.get({_lit(step['order_by'])})), str(r.get({_lit(step['pk'])}))))")
            if step.get("limit") is not None:
                limit = expr(step["limit"])
                w.emit(depth, f"if {limit} is not None:")
                w.emit(depth + 1, f"{alias} = {alias}[:{limit}]")
        elif op == "aggregate":
            src, col, fn = step["source"], step.get("col"), step["fn"]
            if fn == "count":
                w.emit(depth, f"{step['as']} = len({src})")
            else:
                w.emit(depth, f"{step['as']}_values = [r.get({_lit(col)}) for r in {src} if r.get({_lit(col)}) is not None]")
                if fn == "sum":
                    w.emit(depth, f"{step['as']} = round(sum({step['as']}_values), 2)")
                else:
                    w.emit(depth, f"{step['as']} = round(sum({step['as']}_values) / len({step['as']}_values), 2) "
                                  f"if {step['as']}_values else 0.0")
        elif op == "count_by":
            w.emit(depth, f"{step['as']} = {{}}")
            w.emit(depth, f"for r in {step['source']}:")
            w.emit(depth + 1, f"k = str(r.get({_lit(step['col'])}))")
            w.emit(depth + 1, f"{step['as']}[k] = {step['as']}.get(k, 0) + 1")
            w.emit(depth, f"{step['as']} = dict(sorted({step['as']}.items()))")
        elif op == "if":
            w.emit(depth, f"if {cond(step['cond'])}:")
            _steps(w, step["then"], depth + 1)
        else:
            raise ContractError(f"unknown step {op!r}")


def _collect_rows(steps: list[dict[str, Any]]) -> None:
    for step in steps:
        if step["op"] in ("load", "insert"):
            _ROWS.add(step["as"])
        elif step["op"] == "if":
            _collect_rows(step["then"])


def _return(w: _Writer, spec: dict[str, Any]) -> None:
    (kind, arg), = spec.items()
    if kind == "items":
        w.emit(1, f"return {{'items': [dict(r) for r in {arg}], 'count': len({arg})}}")
    elif kind == "object":
        w.emit(1, "return {")
        for k, e in arg.items():
            w.emit(2, f"{_lit(k)}: {expr(e)},")
        w.emit(1, "}")
    else:
        w.emit(1, f"return {expr(spec)}")


def render_tool(name: str, description: str, contract: dict[str, Any]) -> str:
    """Python source for one tool: ``def name(db, ctx, ...)`` implementing ``contract``."""
    required = [p for p in contract["params"] if p in contract.get("required", [])]
    optional = [p for p in contract["params"] if p not in required]
    params = ["db", "ctx", *required, *(f"{p}={_lit(contract['params'][p].get('default'))}" for p in optional)]
    w = _Writer()
    _ROWS.clear()
    _collect_rows(contract["steps"])
    docstring = description.replace("\\", "\\\\").replace('"', "'")  # any text makes a valid docstring
    w.emit(1, '"""' + docstring + '"""')
    _steps(w, contract["steps"], 1)
    _return(w, contract["returns"])
    code_lines = [f"def {name}({', '.join(params)}):", *w.lines]
    body = "\n".join(code_lines) + "\n"
    uses_dates = any(helper in line for line in code_lines[2:] for helper in ("_is_date(", "_instant(", "_utc_day("))
    return (_DATE_HELPERS if uses_dates else "") + body


def describe_expr(e: Any) -> str:
    (kind, arg), = e.items()
    if kind == "param":
        return arg
    if kind == "const":
        return repr(arg)
    if kind == "var":
        return arg.replace(".", " ").replace("_", " ")
    if kind in ("add", "sub"):
        return f"{describe_expr(arg[0])} {'+' if kind == 'add' else '-'} {describe_expr(arg[1])}"
    if kind == "instant":
        return f"{describe_expr(arg)} as a UTC instant"
    return kind


def describe_cond(c: dict[str, Any]) -> str:
    (kind, arg), = c.items()
    if kind == "in":
        return f"{describe_expr(arg[0])} is one of {', '.join(arg[1])}"
    if kind == "not_in":
        return f"{describe_expr(arg[0])} is not {' or '.join(arg[1])}"
    if kind in ("eq", "ne", "gt", "ge", "lt", "le"):
        op = {"eq": "=", "ne": "≠", "gt": ">", "ge": "≥", "lt": "<", "le": "≤"}[kind]
        return f"{describe_expr(arg[0])} {op} {describe_expr(arg[1])}"
    if kind == "no_rows":
        other = " other than this one" if "except" in arg else ""
        return f"no {arg['table']} row{other} has {arg['col']} = {describe_expr(arg['value'])}"
    if kind == "any_set":
        return f"at least one of {', '.join(arg)} is given"
    if kind == "and":
        return " and ".join(describe_cond(x) for x in arg)
    return kind


def describe_contract(contract: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Human-readable (pre-conditions, post-conditions) of a contract."""
    pre: list[str] = []
    post: list[str] = []

    def walk(steps: list[dict[str, Any]], guard: str = "") -> None:
        for step in steps:
            op = step["op"]
            if op == "load":
                pre.append(f"a {step['what']} with the given id exists in {step['table']} (else KeyError)")
            elif op == "require":
                pre.append(f"{describe_cond(step['cond'])} (else {step.get('error', 'ValueError')}: {step['message']})")
            elif op == "validate" and ("enum" in step or "min" in step or step["type"] in ("date", "datetime")):
                if "enum" in step:
                    rule = f"one of {', '.join(step['enum'])}"
                elif "min" in step:
                    rule = f"at least {step['min']}" + (f" and at most {step['max']}" if "max" in step else "")
                else:
                    rule = TYPE_WORDS[step["type"]]
                pre.append(f"{step['param']} is {rule} (else ValueError)")
            elif op == "insert":
                post.append(f"{guard}a new row is added to {step['table']}"
                            + (f" with status {step['values']['status']['const']!r}"
                               if "const" in step["values"].get("status", {}) else ""))
            elif op == "update":
                cols = ", ".join(step["set"])
                post.append(f"{guard}{step['table']} row: {cols} updated")
            elif op == "delete":
                post.append(f"{guard}the {step['table']} row is removed")
            elif op == "if":
                walk(step["then"], guard="when " + step.get("when", "a condition holds") + ": ")

    walk(contract["steps"])
    if not post:
        post.append("the state is unchanged (read-only)")
    return pre, post
