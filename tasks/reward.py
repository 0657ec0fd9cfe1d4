"""State-based reward: the agent's final state against the ground truth, under column policies,
plus the answer and the refusal where the task needs them. Django-free. Every rule is in
docs/decisions.md, "Reward".

* **Rows that existed in s0** keep their ids and are compared by primary key. A column the gold
  run leaves alone must still hold its s0 value, whatever its policy: an edit nobody asked for
  fails. A column the gold run changes must hold the gold value under the column's policy.
* **Rows created during the episode** have generated ids, so they are aligned by content: every
  non-exempt column matches, and foreign keys to other new rows are compared through the
  alignment (tables are aligned parents first). ``exempt`` covers only what the agent cannot
  choose: generated ids and the stamps a tool sets.
* **Equal meaning passes**: instants are compared as instants (``Z`` = ``+00:00``), numbers by
  value, enums by their declared spelling; ``semantic`` text with :mod:`tasks.semantic` (a
  paraphrase passes, a negation, a changed number or name fails).
* Missing and extra rows fail; every table is compared, so collateral damage fails too.
* **Answers** (question tasks) must be stated as answers: numbers by value, dates and times as
  dates and times, names as words; a reply that also mentions more than ``MAX_RECITED`` other values
  the agent saw in tool results (numbers of two digits or more, dates, names, statuses, ids; not the
  values the user gave or the task's changes are about) is a recital, not an answer, and fails; an
  answer from a short list (a request's status) fails when the sentence that gives it also names
  another of the list ("open or in progress").
* **Refusals** pass only when nothing changed (the gold state is s0) and an assistant message
  refuses and names the reason.
* The reward is binary (1.0 only when everything holds); the breakdown also gives a partial
  score, the share of checks that passed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import phrasing
from .semantic import Judge, semantic_match

MAX_RECITED = 3  # other values the agent saw that a reply may mention and still be an answer


def same_meaning(expected: Any, got: Any, column_type: str | None = None) -> bool:
    """Equal meaning: instants as instants, dates as dates, numbers by value, the rest exactly."""
    if expected is None or got is None:
        return expected is got
    if isinstance(expected, bool) or isinstance(got, bool):
        return expected is got
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        return abs(float(expected) - float(got)) <= 1e-9 * max(1.0, abs(float(expected)))
    if column_type == "datetime" or (isinstance(expected, str) and isinstance(got, str) and "T" in expected):
        a, b = phrasing.parse_instant(expected), phrasing.parse_instant(got)
        if a is not None and b is not None:
            return a == b
    if column_type == "date" and isinstance(expected, str) and isinstance(got, str):
        a, b = phrasing.parse_date(expected), phrasing.parse_date(got)
        if a is not None and b is not None and len(got.strip()) == 10:
            return a == b
    return expected == got


def _identical(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The same columns with the same values of the same types (``==`` alone takes True for 1). A
    row shared with s0 (a session's state shares its untouched rows) is identical at once."""
    return a is b or (a == b and all(type(value) is type(b[column]) for column, value in a.items()))


def with_rows_shared(s0: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with each row identical to s0's replaced by s0's own row (tables and rows are never
    changed in place), so comparing it with a session's state, which shares s0's untouched rows
    too, meets most rows by identity. Done once per task where its gold state is kept."""
    shared: dict[str, Any] = {}
    for table, rows in state.items():
        before = s0.get(table)
        if not isinstance(rows, dict) or not isinstance(before, dict):
            shared[table] = rows
            continue
        shared[table] = {pk: before[pk] if pk in before and isinstance(row, dict) and isinstance(before[pk], dict)
                         and _identical(row, before[pk]) else row for pk, row in rows.items()}
    return shared


@dataclass
class TableCheck:
    table: str
    matched: int = 0
    missing: list[Any] = field(default_factory=list)  # gold rows without a counterpart
    extra: list[Any] = field(default_factory=list)  # final rows without a counterpart
    mismatches: list[dict[str, Any]] = field(default_factory=list)  # {pk, column, policy, expected, got, why}
    checks: int = 0
    passed: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.mismatches)

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "ok": self.ok, "matched": self.matched, "missing": self.missing[:20],
                "extra": self.extra[:20], "mismatches": self.mismatches[:20], "checks": self.checks,
                "passed": self.passed}


@dataclass
class RewardResult:
    reward: float
    db_match: bool
    communicate_ok: bool
    refusal_ok: bool
    partial: float
    tables: list[TableCheck]
    communicate: list[dict[str, Any]]
    refusal: dict[str, Any] | None = None

    def breakdown(self) -> dict[str, Any]:
        failing = [t.as_dict() for t in self.tables if not t.ok]
        return {"reward": self.reward, "db_match": self.db_match, "communicate_ok": self.communicate_ok,
                "refusal_ok": self.refusal_ok, "partial": round(self.partial, 4), "failing_tables": failing,
                "tables": {t.table: {"ok": t.ok, "matched": t.matched, "checks": t.checks, "passed": t.passed}
                           for t in self.tables},
                "communicate_checks": self.communicate, "refusal_check": self.refusal, "reasons": self.reasons()}

    def reasons(self) -> list[str]:
        out: list[str] = []
        for t in self.tables:
            for pk in t.missing[:3]:
                out.append(f"{t.table}: expected row {pk} is missing")
            for pk in t.extra[:3]:
                out.append(f"{t.table}: unexpected row {pk}")
            for m in t.mismatches[:3]:
                out.append(f"{t.table}[{m['pk']}].{m['column']} ({m['why']}): expected {m['expected']!r}, "
                           f"got {m['got']!r}")
        for c in self.communicate:
            if not c["met"]:
                if c.get("ruled_out"):
                    out.append(f"the reply also says {', '.join(map(repr, c['ruled_out']))}, which the answer "
                               f"{c['value']!r} rules out")
                elif c.get("recital"):
                    out.append(f"the reply recites {c['recital']} other values it saw instead of answering")
                else:
                    out.append(f"the agent never told the user {c['label']} ({c['value']!r})")
        if self.refusal is not None and not self.refusal["met"]:
            out.append("the agent did not refuse with the reason (" + self.refusal["reason"] + ")")
        return out


def _policies(schema: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    return {t: spec["columns"] for t, spec in schema["tables"].items()}


def _table_order(schema: dict[str, Any]) -> list[str]:
    """Parents first, so foreign keys to new rows can be mapped through the alignment."""
    tables = schema["tables"]
    order: list[str] = []
    remaining = list(tables)
    while remaining:
        progressed = False
        for t in list(remaining):
            parents = {c["fk"]["table"] for c in tables[t]["columns"].values() if c.get("fk")} - {t}
            if parents <= set(order):
                order.append(t)
                remaining.remove(t)
                progressed = True
        if not progressed:  # cycles: keep the remaining order
            order.extend(remaining)
            break
    return order


def compare_states(final: dict[str, Any], gold: dict[str, Any], s0: dict[str, Any],
                   schema: dict[str, Any], judge: Judge | None = None) -> list[TableCheck]:
    """The tables' checks; ``judge`` decides ``semantic`` texts that only the overlap rule rejects."""
    policies = _policies(schema)
    mapping: dict[str, dict[Any, Any]] = {}  # table -> final new pk -> gold new pk
    checks: list[TableCheck] = []
    for table in _table_order(schema):
        columns = policies[table]
        check = TableCheck(table)
        final_rows = final.get(table) or {}
        gold_rows = gold.get(table) or {}
        old_rows = s0.get(table) or {}

        def as_gold(spec: dict[str, Any], got: Any) -> Any:
            fk = spec.get("fk")
            if fk and got is not None and got in mapping.get(fk["table"], {}):
                return mapping[fk["table"]][got]
            return got

        def goal_ok(spec: dict[str, Any], expected: Any, got: Any) -> bool:
            got = as_gold(spec, got)
            if spec.get("policy") == "semantic" and isinstance(expected, str):
                return semantic_match(expected, got, judge)
            return same_meaning(expected, got, spec.get("type"))

        # Rows that existed before: by primary key; untouched columns must stay as they were.
        for pk in sorted(old_rows, key=str):
            in_gold, in_final = pk in gold_rows, pk in final_rows
            check.checks += 1
            if in_gold and not in_final:
                check.missing.append(pk)
                continue
            if in_final and not in_gold:
                check.extra.append(pk)  # a row the gold run deleted, still present
                continue
            if not in_gold:
                check.passed += 1
                continue
            before, expected_row, got_row = old_rows[pk], gold_rows[pk], final_rows[pk]
            if _identical(got_row, before) and _identical(expected_row, before):
                # Untouched by both runs (most rows): every column agrees, no need to compare each.
                check.matched += 1
                check.passed += 1
                continue
            row_ok = True
            for col in sorted(set(columns) | set(expected_row) | set(got_row)):
                spec = columns.get(col, {})
                original, expected, got = before.get(col), expected_row.get(col), got_row.get(col)
                if same_meaning(original, expected, spec.get("type")):
                    ok, why = same_meaning(original, got, spec.get("type")), "changed without being asked"
                else:
                    ok, why = goal_ok(spec, expected, got), f"{spec.get('policy', 'exact')} mismatch"
                if not ok:
                    row_ok = False
                    check.mismatches.append({"pk": pk, "column": col, "policy": spec.get("policy", "exact"),
                                             "expected": expected, "got": got, "why": why})
            check.matched += row_ok
            check.passed += row_ok

        # New rows: align by content, greedily on the fewest mismatching columns.
        compared = [c for c, spec in columns.items() if spec.get("policy", "exact") != "exempt"]

        def failures(gold_row: dict[str, Any], final_row: dict[str, Any]) -> list[str]:
            return [c for c in compared if not goal_ok(columns[c], gold_row.get(c), final_row.get(c))]

        gold_new = [pk for pk in gold_rows if pk not in old_rows]
        free = [pk for pk in final_rows if pk not in old_rows]
        table_map: dict[Any, Any] = {}
        for gpk in gold_new:
            check.checks += 1
            best, best_failures = None, None
            for fpk in free:
                failing = failures(gold_rows[gpk], final_rows[fpk])
                if best_failures is None or len(failing) < len(best_failures):
                    best, best_failures = fpk, failing
                if not failing:
                    break
            if best is not None and not best_failures:
                free.remove(best)
                table_map[best] = gpk
                check.matched += 1
                check.passed += 1
            else:
                check.missing.append(gpk)
                if best is not None:
                    for col in best_failures or []:
                        check.mismatches.append({"pk": gpk, "column": col, "policy": columns[col].get("policy", "exact"),
                                                 "expected": gold_rows[gpk].get(col), "got": final_rows[best].get(col),
                                                 "why": "closest new row differs"})
        for fpk in free:
            check.extra.append(fpk)
            check.checks += 1
        mapping[table] = table_map
        checks.append(check)
    return checks


# ---------------------------------------------------------------------------------------------
# Answers and refusals


def _seen_values(observations: list[Any]) -> list[tuple[str, Any]]:
    """(kind, value) of the scalar values the agent saw in tool results: the candidates of a recital."""
    found: list[tuple[str, Any]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if value >= 10 or value != int(value):  # small integers are everywhere (counts, quantities)
                found.append(("number", value))
        elif isinstance(value, str) and 3 <= len(value) <= 60:
            if phrasing.parse_instant(value):
                found.append(("datetime", value))
            elif phrasing.parse_date(value) and len(value) == 10:
                found.append(("date", value))
            else:
                found.append(("words", value))

    for obs in observations:
        walk(obs)
    unique: list[tuple[str, Any]] = []
    for item in found:
        if item not in unique:
            unique.append(item)
    return unique


def answer_checks(answers: list[dict[str, Any]], assistant_messages: list[str],
                  observations: list[Any] | None = None, said: list[Any] | None = None) -> list[dict[str, Any]]:
    """``said``: values the user gave or the task is about (repeating them back is not a recital)."""
    text = "\n".join(m for m in assistant_messages if m)
    said = list(said or [])
    seen = [(k, v) for k, v in _seen_values(observations or []) if not any(same_meaning(v, s) for s in said)]
    results = []
    for answer in answers:
        kind, value = answer["kind"], answer["value"]
        met = phrasing.mentions(text, kind, value)
        others = [(k, v) for k, v in seen if not same_meaning(value, v)
                  and not (k == "words" and phrasing.contains_word(str(value), str(v)))]
        recited = sum(1 for k, v in others if phrasing.mentions(text, k, v))
        # An answer from a short list (a request's status) is one of them: a sentence that gives it and
        # names another hedges ("it is open or in progress"); another sentence may ("I can open a new one").
        answering = [s for s in re.split(r"(?<=[.!?])\s+|\n", text) if phrasing.mentions(s, kind, value)]
        ruled_out = [v for v in answer.get("exclusive") or []
                     if any(phrasing.mentions(s, "words", v) for s in answering)]
        result = {"label": answer.get("label", ""), "value": value, "kind": kind,
                  "met": met and recited <= MAX_RECITED and not ruled_out}
        if met and recited > MAX_RECITED:
            result["recital"] = recited
        if met and ruled_out:
            result["ruled_out"] = ruled_out
        results.append(result)
    return results


def refusal_check(refusal: dict[str, Any], assistant_messages: list[str]) -> dict[str, Any]:
    said = [m for m in assistant_messages if m and phrasing.refuses(m)]
    named = [m for m in said if phrasing.contains_any(m, refusal["keywords"])]
    return {"reason": refusal["reason"], "met": bool(named), "refused": bool(said)}


def compute_reward(final: dict[str, Any], gold: dict[str, Any], s0: dict[str, Any], schema: dict[str, Any],
                   answers: list[dict[str, Any]] | None = None, assistant_messages: list[str] | None = None,
                   observations: list[Any] | None = None, refusal: dict[str, Any] | None = None,
                   said: list[Any] | None = None, judge: Judge | None = None) -> RewardResult:
    tables = compare_states(final, gold, s0, schema, judge)
    texts = list(assistant_messages or [])
    comms = answer_checks(answers or [], texts, observations, said)
    refused = refusal_check(refusal, texts) if refusal else None
    db_match = all(t.ok for t in tables)
    comm_ok = all(c["met"] for c in comms)
    refusal_ok = refused is None or refused["met"]
    total = sum(t.checks for t in tables) + len(comms) + (1 if refused else 0)
    passed = sum(t.passed for t in tables) + sum(1 for c in comms if c["met"]) + (1 if refused and refused["met"] else 0)
    partial = passed / total if total else 1.0
    return RewardResult(reward=1.0 if db_match and comm_ok and refusal_ok else 0.0, db_match=db_match,
                        communicate_ok=comm_ok, refusal_ok=refusal_ok, partial=partial, tables=tables,
                        communicate=comms, refusal=refused)
