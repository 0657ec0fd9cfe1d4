"""State utilities shared by the parent process and the sandbox worker.

Stdlib only: the sandbox worker imports this module before it hardens itself, so it must not
pull in Django or anything outside the standard library.

A *state* is a JSON document ``{table: {primary_key: row}}``; a *schema* is
``{"tables": {table: {"pk": column, "columns": {column: {...}}}}}``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from typing import Any

State = dict[str, dict[str, dict[str, Any]]]

COLUMN_TYPES = ("string", "text", "integer", "number", "boolean", "date", "datetime", "enum", "json")

# Base states a sandbox worker keeps for resumed sessions, least recently used dropped first; the
# parent keeps a mirror of the same size to know which it need not send again.
RESUME_BASES_KEPT = 16


def canonical_json(value: Any) -> str:
    """Canonical JSON: sorted keys, fixed separators, UTF-8 text, no NaN/Infinity."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def state_hash(state: State) -> str:
    return hashlib.sha256(canonical_json(state).encode("utf-8")).hexdigest()


def copy_state(state: State) -> State:
    return json.loads(json.dumps(state))


# ---------------------------------------------------------------------------------------------
# Diffs


def diff_states(before: State, after: State) -> dict[str, dict[str, Any]]:
    """Per-table diff: rows added, removed and changed (changed rows carry before/after per column)."""
    diff: dict[str, dict[str, Any]] = {}
    for table in sorted(set(before) | set(after)):
        old_rows = before.get(table) or {}
        new_rows = after.get(table) or {}
        if old_rows == new_rows:
            continue
        added = {pk: new_rows[pk] for pk in sorted(new_rows.keys() - old_rows.keys())}
        removed = {pk: old_rows[pk] for pk in sorted(old_rows.keys() - new_rows.keys())}
        changed: dict[str, dict[str, list[Any]]] = {}
        for pk in sorted(old_rows.keys() & new_rows.keys()):
            old, new = old_rows[pk], new_rows[pk]
            if old != new:
                changed[pk] = {
                    col: [old.get(col), new.get(col)]
                    for col in sorted(set(old) | set(new))
                    if old.get(col) != new.get(col)
                }
        diff[table] = {"added": added, "removed": removed, "changed": changed}
    return diff


def diff_is_empty(diff: dict[str, Any]) -> bool:
    return not any(d["added"] or d["removed"] or d["changed"] for d in diff.values())


def apply_diff(state: State, diff: dict[str, dict[str, Any]]) -> State:
    """Apply a diff produced by :func:`diff_states` to a copy of ``state``."""
    result = copy_state(state)
    for table, change in diff.items():
        rows = result.setdefault(table, {})
        for pk in change.get("removed", {}):
            rows.pop(pk, None)
        for pk, row in change.get("added", {}).items():
            rows[pk] = row
        for pk, cols in change.get("changed", {}).items():
            if pk not in rows:  # removed by an earlier patch in a merge: nothing to change
                continue
            for col, (_old, new) in cols.items():
                rows[pk][col] = new
    return result


def apply_diff_shared(state: State, diff: dict[str, dict[str, Any]]) -> State:
    """:func:`apply_diff` without copying what the diff leaves alone: the result shares untouched
    tables and rows with ``state``, so neither may be changed in place afterwards (for states kept
    as values, such as a session's; a call then costs the rows it touched, not the whole state)."""
    result = dict(state)
    for table, change in diff.items():
        rows = dict(result.get(table, {}))
        for pk in change.get("removed", {}):
            rows.pop(pk, None)
        for pk, row in change.get("added", {}).items():
            rows[pk] = copy_state(row)
        for pk, cols in change.get("changed", {}).items():
            if pk not in rows:
                continue
            row = dict(rows[pk])
            for col, (_old, new) in cols.items():
                row[col] = copy_state(new) if isinstance(new, (dict, list)) else new
            rows[pk] = row
        result[table] = rows
    return result


# ---------------------------------------------------------------------------------------------
# Schema validation


def _type_ok(kind: str, value: Any, column: dict[str, Any]) -> bool:
    if kind in ("string", "text"):
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "enum":
        return isinstance(value, str) and value in column.get("values", ())
    if kind == "date":
        if not isinstance(value, str):
            return False
        try:
            _dt.date.fromisoformat(value)
        except ValueError:
            return False
        return True
    if kind == "datetime":
        if not isinstance(value, str):
            return False
        try:
            _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return False
        return True
    return True  # json: anything JSON-able


def validate_rows(schema: dict[str, Any], state: State, touched: dict[str, set[str]] | None = None) -> list[str]:
    """Check types, required columns, primary keys and foreign keys.

    ``touched`` limits the row checks to the given ``{table: {pk}}`` (added or changed rows);
    foreign keys that point at removed rows are checked through ``removed`` in
    :func:`validate_after_write`. Returns a list of human-readable problems (empty when valid).
    """
    problems: list[str] = []
    tables = schema.get("tables", {})
    for table in state:
        if table not in tables:
            problems.append(f"unknown table {table!r}")
    for table, spec in tables.items():
        rows = state.get(table)
        if rows is None:
            problems.append(f"table {table!r} is missing")
            continue
        if not isinstance(rows, dict):
            problems.append(f"table {table!r} is not an object of rows")
            continue
        pks = rows.keys() if touched is None else touched.get(table, ())
        columns = spec["columns"]
        pk_col = spec["pk"]
        for pk in pks:
            row = rows.get(pk)
            if row is None:
                continue
            if not isinstance(row, dict):
                problems.append(f"{table}[{pk}] is not an object")
                continue
            if str(row.get(pk_col)) != str(pk):
                problems.append(f"{table}[{pk}]: primary key column {pk_col!r} is {row.get(pk_col)!r}")
            for col in row:
                if col not in columns:
                    problems.append(f"{table}[{pk}]: unknown column {col!r}")
            for col, cspec in columns.items():
                value = row.get(col)
                if value is None:
                    if not cspec.get("nullable", False):
                        problems.append(f"{table}[{pk}].{col} is required")
                    continue
                if not _type_ok(cspec["type"], value, cspec):
                    problems.append(f"{table}[{pk}].{col}={value!r} is not a valid {cspec['type']}")
                    continue
                fk = cspec.get("fk")
                if fk:
                    target = state.get(fk["table"]) or {}
                    if str(value) not in target:
                        problems.append(f"{table}[{pk}].{col}={value!r} references a missing {fk['table']} row")
    return problems


def validate_after_write(schema: dict[str, Any], state: State, diff: dict[str, dict[str, Any]]) -> list[str]:
    """Validate only what a write touched: added/changed rows, and references to removed rows."""
    touched = {t: set(d["added"]) | set(d["changed"]) for t, d in diff.items()}
    problems = validate_rows(schema, state, touched)
    removed = {t: set(d["removed"]) for t, d in diff.items() if d["removed"]}
    if removed:
        for table, spec in schema.get("tables", {}).items():
            for col, cspec in spec["columns"].items():
                fk = cspec.get("fk")
                if not fk or fk["table"] not in removed:
                    continue
                gone = removed[fk["table"]]
                for pk, row in (state.get(table) or {}).items():
                    if row.get(col) is not None and str(row.get(col)) in gone:
                        problems.append(
                            f"{table}[{pk}].{col}={row.get(col)!r} references a removed {fk['table']} row"
                        )
    return problems


# ---------------------------------------------------------------------------------------------
# Deterministic context and references


class ToolContext:
    """What a tool may know about the world: a frozen clock and seeded ids. Nothing else.

    The n-th id of an episode depends only on the seed and n, so a recovered session can continue
    the sequence by restoring the counter.
    """

    __slots__ = ("_now", "_seed", "counter")

    def __init__(self, clock: str, id_seed: int) -> None:
        self._now = _dt.datetime.fromisoformat(clock.replace("Z", "+00:00"))
        self._seed = id_seed
        self.counter = 0

    def now(self) -> _dt.datetime:
        return self._now

    def now_iso(self) -> str:
        return self._now.strftime("%Y-%m-%dT%H:%M:%SZ")

    def today(self) -> str:
        return self._now.date().isoformat()

    def new_id(self, prefix: str = "id") -> str:
        self.counter += 1
        digest = hashlib.sha256(f"{self._seed}:{self.counter}".encode()).hexdigest()
        return f"{prefix}_{digest[:10]}"

    def reset(self) -> None:
        self.counter = 0


def resolve_path(value: Any, path: str) -> Any:
    """Follow ``a.b.0.c`` through dicts and lists; raises KeyError with a clear message."""
    current = value
    if path in ("", "$"):
        return current
    for part in path.split("."):
        if isinstance(current, list):
            try:
                current = current[int(part)]
            except (ValueError, IndexError):
                raise KeyError(f"reference path {path!r}: no item {part!r}") from None
        elif isinstance(current, dict):
            if part not in current:
                raise KeyError(f"reference path {path!r}: no field {part!r}")
            current = current[part]
        else:
            raise KeyError(f"reference path {path!r}: cannot descend into {type(current).__name__}")
    return current


_SELECTORS = ("$pick", "$all", "$sum", "$min", "$max")


def _instant_or_none(value: Any) -> _dt.datetime | None:
    if not isinstance(value, str) or len(value) < 16 or "T" not in value:
        return None
    try:
        parsed = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(_dt.timezone.utc) if parsed.tzinfo else None


def same_value(a: Any, b: Any) -> bool:
    """Equal meaning for selections: instants as instants, numbers by value."""
    if a == b:
        return True
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return abs(a - b) < 1e-9
    ia, ib = _instant_or_none(a), _instant_or_none(b)
    return ia is not None and ia == ib


def _matches(row: Any, where: dict[str, Any]) -> bool:
    if not isinstance(row, dict):
        return False
    for column, wanted in where.items():
        value = row.get(column)
        if isinstance(wanted, dict) and "$in" in wanted:
            if not any(same_value(value, w) for w in wanted["$in"]):
                return False
        elif isinstance(wanted, dict) and "$on" in wanted:  # the calendar day of a date or date-time
            if not (isinstance(value, str) and value[:10] == wanted["$on"]):
                return False
        elif isinstance(wanted, dict) and "$ne" in wanted:
            if same_value(value, wanted["$ne"]):
                return False
        elif not same_value(value, wanted):
            return False
    return True


def _select(kind: str, spec: list[Any], field: str | None, outputs: list[Any]) -> Any:
    """``{"$pick": [step, "items", {where}], "$get": "field"}``: the one row of an earlier output's
    list that matches ``where`` (``$all``: every match; ``$sum``/``$min``/``$max``: over ``field``)."""
    step, path, where = spec
    if not isinstance(step, int) or not 0 <= step < len(outputs):
        raise KeyError(f"{kind} refers to step {step!r}, but only {len(outputs)} steps ran before")
    rows = resolve_path(outputs[step], path)
    if not isinstance(rows, list):
        raise KeyError(f"{kind}: {path!r} of step {step} is not a list")
    where = resolve_refs(where or {}, outputs)
    found = [r for r in rows if _matches(r, where)]
    values = [r.get(field) if field else r for r in found]
    if kind == "$pick":
        if len(found) != 1:
            raise KeyError(f"$pick on step {step} {path!r}: {len(found)} rows match {where!r}, expected exactly 1")
        return values[0]
    if kind == "$all":
        return values
    numbers = [v for v in values if v is not None]
    if kind == "$sum":
        return round(sum(numbers), 2)
    if not numbers:
        raise KeyError(f"{kind} on step {step} {path!r}: no row matches {where!r}")
    return min(numbers) if kind == "$min" else max(numbers)


def resolve_refs(args: Any, outputs: list[Any]) -> Any:
    """Replace references to earlier outputs by their values:

    * ``{"$ref": [step, "path"]}``: the value at ``path`` in the output of ``step``;
    * ``{"$pick": [step, "items", {col: value}], "$get": "field"}``: ``field`` of the one row of that
      list whose columns match (values may be references; ``{"$in": [...]}``, ``{"$on": "YYYY-MM-DD"}``
      and ``{"$ne": v}`` are allowed); ``$all`` gives every match, ``$sum``, ``$min``, ``$max`` fold them.
    """
    if isinstance(args, dict):
        if set(args) == {"$ref"}:
            step, path = args["$ref"]
            if not isinstance(step, int) or not 0 <= step < len(outputs):
                raise KeyError(f"reference to step {step!r}, but only {len(outputs)} steps ran before")
            return resolve_path(outputs[step], path)
        kinds = [k for k in _SELECTORS if k in args]
        if kinds and set(args) <= {kinds[0], "$get"}:
            return _select(kinds[0], args[kinds[0]], args.get("$get"), outputs)
        return {k: resolve_refs(v, outputs) for k, v in args.items()}
    if isinstance(args, list):
        return [resolve_refs(v, outputs) for v in args]
    return args


def is_reference(value: Any) -> bool:
    return isinstance(value, dict) and (set(value) == {"$ref"} or any(k in value for k in _SELECTORS))
