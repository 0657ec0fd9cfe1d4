"""State-based reward: the agent's final state against the ground truth, under column policies.

Django-free. Decisions (docs/decisions.md, "Reward"):

* Rows that existed in ``s0`` keep their ids and are compared by primary key.
* Rows created during the episode have generated (exempt) ids, so they are aligned by content:
  every ``exact`` column equal, every ``semantic`` column similar, foreign keys to other new rows
  compared through the alignment (tables are aligned parents first).
* ``exempt`` columns are ignored; ``exact`` columns must be equal; ``semantic`` columns match when
  the token-set similarity of their normalized text is at least ``SEMANTIC_THRESHOLD``.
* Missing and extra rows fail; every table is compared, so collateral damage fails too.
* Communicate check (τ²-bench's rule): each required string appears, case-insensitively and with
  commas removed, in some assistant message.
* The reward is binary (1.0 only when everything matches); the breakdown also gives a partial
  score, the share of row and column checks that passed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

SEMANTIC_THRESHOLD = 0.8
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)


def normalize_text(value: Any) -> str:
    return " ".join(_PUNCT.sub(" ", str(value).lower()).split())


def semantic_match(expected: Any, got: Any, threshold: float = SEMANTIC_THRESHOLD) -> bool:
    if expected is None or got is None:
        return expected is got
    a, b = normalize_text(expected), normalize_text(got)
    if a == b:
        return True
    return fuzz.token_set_ratio(a, b) / 100.0 >= threshold


@dataclass
class TableCheck:
    table: str
    matched: int = 0
    missing: list[Any] = field(default_factory=list)  # gold rows without a counterpart
    extra: list[Any] = field(default_factory=list)  # final rows without a counterpart
    mismatches: list[dict[str, Any]] = field(default_factory=list)  # {pk, column, policy, expected, got}
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
    partial: float
    tables: list[TableCheck]
    communicate: list[dict[str, Any]]

    def breakdown(self) -> dict[str, Any]:
        failing = [t.as_dict() for t in self.tables if not t.ok]
        return {"reward": self.reward, "db_match": self.db_match, "communicate_ok": self.communicate_ok,
                "partial": round(self.partial, 4), "failing_tables": failing,
                "tables": {t.table: {"ok": t.ok, "matched": t.matched, "checks": t.checks, "passed": t.passed}
                           for t in self.tables},
                "communicate_checks": self.communicate, "reasons": self.reasons()}

    def reasons(self) -> list[str]:
        out: list[str] = []
        for t in self.tables:
            for pk in t.missing[:3]:
                out.append(f"{t.table}: expected row {pk} is missing")
            for pk in t.extra[:3]:
                out.append(f"{t.table}: unexpected row {pk}")
            for m in t.mismatches[:3]:
                out.append(f"{t.table}[{m['pk']}].{m['column']} ({m['policy']}): expected {m['expected']!r}, got {m['got']!r}")
        for c in self.communicate:
            if not c["met"]:
                out.append(f"the agent never told the user {c['info']!r}")
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


def compare_states(final: dict[str, Any], gold: dict[str, Any], s0: dict[str, Any], schema: dict[str, Any],
                   threshold: float = SEMANTIC_THRESHOLD) -> list[TableCheck]:
    policies = _policies(schema)
    mapping: dict[str, dict[Any, Any]] = {}  # table -> final new pk -> gold new pk
    checks: list[TableCheck] = []
    for table in _table_order(schema):
        columns = policies[table]
        check = TableCheck(table)
        final_rows = final.get(table) or {}
        gold_rows = gold.get(table) or {}
        old = set((s0.get(table) or {}))

        def column_ok(col: str, spec: dict[str, Any], expected: Any, got: Any) -> bool:
            policy = spec.get("policy", "exact")
            if policy == "exempt":
                return True
            fk = spec.get("fk")
            if fk and got is not None and got in mapping.get(fk["table"], {}):
                got = mapping[fk["table"]][got]
            if policy == "semantic":
                return semantic_match(expected, got, threshold)
            return expected == got

        def compare_row(pk: Any, expected: dict[str, Any], got: dict[str, Any], record: bool) -> int:
            failures = 0
            for col, spec in columns.items():
                if spec.get("policy", "exact") == "exempt":
                    continue
                ok = column_ok(col, spec, expected.get(col), got.get(col))
                if record:
                    check.checks += 1
                    check.passed += ok
                if not ok:
                    failures += 1
                    if record:
                        check.mismatches.append({"pk": pk, "column": col, "policy": spec.get("policy", "exact"),
                                                 "expected": expected.get(col), "got": got.get(col)})
            return failures

        # Pre-existing rows: same primary key.
        for pk in sorted(set(gold_rows) & old, key=str):
            if pk in final_rows:
                check.matched += compare_row(pk, gold_rows[pk], final_rows[pk], True) == 0
            else:
                check.missing.append(pk)
                check.checks += 1
        for pk in sorted((set(final_rows) & old) - set(gold_rows), key=str):
            check.extra.append(pk)  # a row the gold chain deleted, still present
            check.checks += 1
        # New rows: align by content, greedily on the fewest mismatching columns.
        gold_new = [pk for pk in gold_rows if pk not in old]
        final_new = [pk for pk in final_rows if pk not in old]
        table_map: dict[Any, Any] = {}
        free = list(final_new)
        for gpk in gold_new:
            best = None
            best_failures = None
            for fpk in free:
                failures = compare_row(gpk, gold_rows[gpk], final_rows[fpk], False)
                if best_failures is None or failures < best_failures:
                    best, best_failures = fpk, failures
                if failures == 0:
                    break
            if best is not None and best_failures == 0:
                free.remove(best)
                table_map[best] = gpk
                compare_row(gpk, gold_rows[gpk], final_rows[best], True)
                check.matched += 1
            else:
                check.missing.append(gpk)
                check.checks += 1
        for fpk in free:
            check.extra.append(fpk)
            check.checks += 1
        mapping[table] = table_map
        checks.append(check)
    return checks


def communicate_checks(required: list[str], assistant_messages: list[str]) -> list[dict[str, Any]]:
    texts = [str(m).replace(",", "").lower() for m in assistant_messages if m]
    results = []
    for info in required:
        needle = str(info).replace(",", "").lower()
        results.append({"info": info, "met": any(needle in t for t in texts)})
    return results


def compute_reward(final: dict[str, Any], gold: dict[str, Any], s0: dict[str, Any], schema: dict[str, Any],
                   communicate_info: list[str] | None = None, assistant_messages: list[str] | None = None,
                   threshold: float = SEMANTIC_THRESHOLD) -> RewardResult:
    tables = compare_states(final, gold, s0, schema, threshold)
    comms = communicate_checks(communicate_info or [], assistant_messages or [])
    db_match = all(t.ok for t in tables)
    comm_ok = all(c["met"] for c in comms)
    total = sum(t.checks for t in tables) + len(comms)
    passed = sum(t.passed for t in tables) + sum(1 for c in comms if c["met"])
    partial = passed / total if total else 1.0
    return RewardResult(reward=1.0 if db_match and comm_ok else 0.0, db_match=db_match, communicate_ok=comm_ok,
                        partial=partial, tables=tables, communicate=comms)
