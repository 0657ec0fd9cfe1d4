"""The ``llm`` synthesis backend: the paper's phase 1 with any OpenAI-compatible model.

Roles, in order: domain proposer → tool designer → database designer → policy writer → code writer
→ test writer → debugger → dependency judge (prompts in ``environments/llm/prompts/``). It fills the
same fields as the procedural backend (tables with roles and life cycles, tools with templates,
subjects and contract steps, a sample state, tests, a policy), so testing, repair, the TDG and task
instantiation work unchanged. A role that fails for one tool fails that tool (``ToolStageError``);
a role that fails for the domain fails the domain (``LLMError``, with the role in its message).

Tests are data written by the model: an instance (rows over the sample state), arguments and an
expected outcome, either an exception type or the expected changes (rows added, columns changed,
rows removed). :meth:`LLMBackend.classify_case` judges a sandbox run against them; rows added
are matched on the columns the test names, since generated ids cannot be predicted.
"""

from __future__ import annotations

import json
import re
from typing import Any

from environments import graph as tdg
from environments.llm import LLMClient, LLMError
from environments.runtime import statekit

from ..interface import Repair, ToolStageError
from ..spec import ColumnSpec, DomainSpec, TableSpec, TestCase, ToolSpec
from . import models as M
from . import stages

JSON_PARAM = {"string": {"type": "string"}, "integer": {"type": "integer"}, "number": {"type": "number"},
              "boolean": {"type": "boolean"}, "date": {"type": "string", "format": "date"},
              "datetime": {"type": "string", "format": "date-time"}}
KINDS_BY_TEMPLATE = {"search": "read", "get": "read", "list_for_parent": "read", "aggregate": "compute",
                     "count_by_status": "compute", "status_rate": "compute"}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "domain"


def _short(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class LLMBackend:
    name = "llm"

    def __init__(self, client: LLMClient, domain_name: str = "", description: str = "",
                 keywords: list[str] | None = None, sector: str = "", existing: list[str] | None = None,
                 tool_count: int = 12, clock: str = "2026-03-02T09:00:00Z") -> None:
        self.client = client
        self.requested = {"name": domain_name, "description": description, "keywords": list(keywords or []),
                          "sector": sector}
        self.existing = list(existing or [])
        self.tool_count = tool_count
        self.clock = clock
        self._designs: M.ToolDesigns | None = None
        self._database: M.DatabaseDesign | None = None
        self.tool_errors: dict[str, str] = {}

    # -- domain ------------------------------------------------------------------------------

    def draft_domain(self, seed: int) -> dict[str, Any]:
        req = self.requested
        if req["name"] and req["description"] and req["keywords"] and req["sector"]:
            proposal = M.DomainProposal(name=req["name"], slug=_slug(req["name"]), description=req["description"],
                                        keywords=req["keywords"], sector=req["sector"])
        else:
            proposal = stages.propose_domains(self.client, count=1, existing=self.existing, name=req["name"],
                                              description=req["description"])[0]
        return {"name": proposal.name, "slug": proposal.slug, "description": proposal.description,
                "keywords": proposal.keywords, "sector": proposal.sector}

    def design_schema(self, draft: dict[str, Any]) -> list[TableSpec]:
        # The paper designs tools first and derives the database from them; our pipeline asks for
        # the schema first, so both roles run here and design_tools binds their answers.
        self._designs = stages.design_tools(self.client, draft, self.tool_count)
        self._database = stages.design_database(self.client, draft, self._designs, self.clock)
        return [self._table(t, self._database) for t in self._database.tables]

    @staticmethod
    def _table(t: M.TableDesign, db: M.DatabaseDesign) -> TableSpec:
        pks = {x.name: x.pk for x in db.tables}
        columns = []
        for c in t.columns:
            generator = "pk" if c.name == t.pk else "fk" if c.fk_table else "status" if c.name == "status" else ""
            columns.append(ColumnSpec(name=c.name, type=c.type, nullable=c.nullable, default=c.default,
                                      fk={"table": c.fk_table, "column": pks[c.fk_table]} if c.fk_table else None,
                                      policy="exempt" if c.name == t.pk else c.policy, values=c.values,
                                      generator=generator, description=c.description))
        machine = t.machine.model_dump() if t.machine else None
        return TableSpec(name=t.name, label=t.label, pk=t.pk, columns=columns, role=t.role, prefix=t.prefix,
                         machine=machine, description=t.description)

    def design_tools(self, draft: dict[str, Any], tables: list[TableSpec]) -> tuple[list[ToolSpec], dict[str, Any]]:
        assert self._designs is not None and self._database is not None, "design_schema runs first"
        bindings = {b.tool: b for b in self._database.tools}
        tools = []
        for design in self._designs.tools:
            binding = bindings.get(design.name)
            if binding is None:
                self.tool_errors[design.name] = ("database_designer: the tool was not bound to any table "
                                                 "(no reads, writes or contract steps)")
            tools.append(self._tool(design, binding))
        return tools, {"business_rules": list(self._designs.business_rules)}

    @staticmethod
    def _tool(design: M.ToolDesign, binding: M.ToolBinding | None) -> ToolSpec:
        properties: dict[str, Any] = {}
        checks: list[dict[str, Any]] = []
        for p in design.parameters:
            schema = dict(JSON_PARAM[p.type], description=p.description)
            check: dict[str, Any] = {"op": "validate", "param": p.name, "type": p.type}
            if not p.required:
                check["optional"] = True
            if p.enum:
                schema["enum"] = check["enum"] = list(p.enum)
            if p.minimum is not None:
                schema["minimum"] = check["min"] = int(p.minimum) if p.type == "integer" else p.minimum
            if p.maximum is not None:
                schema["maximum"] = check["max"] = int(p.maximum) if p.type == "integer" else p.maximum
            properties[p.name] = schema
            checks.append(check)
        required = [p.name for p in design.parameters if p.required]
        subject = binding.subject.model_dump() if binding else {"template": design.template, "table": None,
                                                                 "parent": None, "filters": {}, "sets": [], "keys": {}}
        if subject.get("transition") is None:
            subject.pop("transition", None)
        contract = {"params": {p.name: {"type": JSON_PARAM[p.type]["type"], "default": None} for p in design.parameters},
                    "required": required, "steps": checks + (list(binding.steps) if binding else []),
                    "returns": {"const": None}, "subject": subject, "description": design.description}
        returns = {"type": "object", "description": design.output_description,
                   "properties": {f.name: {"type": f.type} for f in design.output_fields}}
        kind = design.kind if design.kind else KINDS_BY_TEMPLATE.get(design.template, "write")
        return ToolSpec(name=design.name, description=design.description, kind=kind,
                        parameters={"type": "object", "properties": properties, "required": required,
                                    "additionalProperties": False},
                        returns=returns, output_fields=[f.model_dump() for f in design.output_fields],
                        preconditions=list(design.preconditions), postconditions=list(design.postconditions),
                        raises=[r.model_dump() for r in design.raises],
                        reads=sorted(binding.reads) if binding else [], writes=sorted(binding.writes) if binding else [],
                        contract=contract, template=design.template)

    def describe_domain(self, draft: dict[str, Any], tables: list[TableSpec], tools: list[ToolSpec],
                        rules: dict[str, Any]) -> str:
        return draft["description"]

    def write_policy(self, domain: DomainSpec, rules: dict[str, Any]) -> str:
        return stages.write_policy(self.client, name=domain.name, description=domain.description,
                                   tables=self._tables_view(domain, None), tools=[self._tool_view(t) for t in domain.tools],
                                   rules=rules.get("business_rules", [])).policy

    # -- views handed to the roles ------------------------------------------------------------

    @staticmethod
    def _tool_view(tool: ToolSpec) -> dict[str, Any]:
        return {"name": tool.name, "description": tool.description, "parameters": tool.parameters,
                "returns": tool.returns, "preconditions": tool.preconditions, "postconditions": tool.postconditions,
                "raises": tool.raises, "reads": tool.reads, "writes": tool.writes}

    @staticmethod
    def _tables_view(domain: DomainSpec, names: list[str] | None) -> list[dict[str, Any]]:
        out = []
        for t in domain.tables:
            if names is not None and t.name not in names:
                continue
            out.append({"name": t.name, "pk": t.pk, "id_prefix": t.prefix, "life_cycle": t.machine,
                        "columns": {c.name: c.schema_entry() for c in t.columns}})
        return out

    def _rules(self) -> list[str]:
        return list(self._designs.business_rules) if self._designs else []

    # -- code, sample state, tests -----------------------------------------------------------

    def write_code(self, domain: DomainSpec, tool: ToolSpec) -> str:
        if tool.name in self.tool_errors:
            raise ToolStageError(self.tool_errors[tool.name])
        try:
            return stages.write_code(self.client.with_context(tool=tool.name), tool_name=tool.name,
                                     tool=self._tool_view(tool), tables=self._tables_view(domain, tool.reads + tool.writes),
                                     rules=self._rules()).code
        except LLMError as exc:
            raise ToolStageError(f"no code: {exc}") from exc

    def build_fixture(self, domain: DomainSpec) -> dict[str, Any]:
        assert self._database is not None
        state: dict[str, Any] = {t.name: {} for t in domain.tables}
        for table, rows in self._database.rows.items():
            pk = domain.table(table).pk
            for row in rows:
                state[table][str(row[pk])] = dict(row)
        problems = statekit.validate_rows(domain.schema(), state)
        if problems:
            raise ValueError("database_designer: the sample state breaks the schema: " + "; ".join(problems[:5]))
        return state

    def write_tests(self, domain: DomainSpec, tool: ToolSpec) -> list[TestCase]:
        try:
            designs = stages.write_tests(self.client.with_context(tool=tool.name), tool_name=tool.name,
                                         tool=self._tool_view(tool), tables=self._tables_view(domain, None),
                                         fixture=domain.fixture, clock=domain.clock)
        except LLMError as exc:
            raise ToolStageError(f"no tests: {exc}") from exc
        return [self.materialize(domain, tool.name, d) for d in designs.cases]

    @staticmethod
    def materialize(domain: DomainSpec, tool: str, design: M.TestDesign) -> TestCase:
        """A test written as data, as a case the runner executes (its instance a patch over the fixture)."""
        instance = statekit.copy_state(domain.fixture)
        for table, rows in design.rows.items():
            if table not in instance:
                continue
            pk = domain.table(table).pk
            for row in rows:
                if pk in row:
                    instance[table][str(row[pk])] = dict(row)
        for gone in design.remove:
            instance.get(gone.get("table", ""), {}).pop(str(gone.get("pk")), None)
        expect = design.expect
        if expect.outcome == "error":
            expected: dict[str, Any] = {"outcome": "anticipated_rejection", "error_type": expect.error_type,
                                        "message": f"the tool must raise {expect.error_type}"}
        else:
            expected = {"outcome": "success", "changes": expect.changes.model_dump(), "returns": expect.returns}
        expected["written"] = design.model_dump()
        return TestCase(tool=tool, name=f"{design.kind}: {design.name}", kind=design.kind,
                        patch=statekit.diff_states(domain.fixture, instance), args=dict(design.args), expected=expected)

    # -- judging a run -----------------------------------------------------------------------

    def classify_case(self, case: TestCase, result: dict[str, Any]) -> tuple[str, str]:
        expected = case.expected
        got = result.get("outcome")
        error = f"{result.get('error_type')}: {result.get('error')}"
        if expected["outcome"] == "anticipated_rejection":
            if got == "anticipated_rejection" and result.get("error_type") == expected.get("error_type"):
                return "anticipated_rejection", error
            if got == "success":
                return "unexpected_failure", (f"expected {expected.get('error_type')}, but the call succeeded and "
                                              f"changed {_short(result.get('diff'))}")
            return "unexpected_failure", f"expected {expected.get('error_type')}, got {got}: {error}"
        if got != "success":
            return "unexpected_failure", f"expected success, got {got}: {error}"
        problem = compare_changes(expected.get("changes") or {}, result.get("diff") or {})
        if problem:
            return "unexpected_failure", f"state after the call differs from the expected changes: {problem}"
        wanted = expected.get("returns")
        if wanted:
            value = result.get("value")
            if not isinstance(value, dict):
                return "unexpected_failure", f"expected an object with {_short(wanted)}, got {_short(value)}"
            wrong = {k: v for k, v in wanted.items() if not statekit.same_value(value.get(k), v)}
            if wrong:
                return "unexpected_failure", (f"return value differs: expected {_short(wrong)}, got "
                                              f"{_short({k: value.get(k) for k in wrong})}")
        return "success", "state changes and return value match the expectation"

    # -- repair ------------------------------------------------------------------------------

    def repair(self, domain: DomainSpec, tool: ToolSpec, failures: list[TestCase]) -> Repair | None:
        shown = [{"case": c.name, "instance_changes": c.patch, "args": c.args,
                  "expected": {k: v for k, v in c.expected.items() if k != "written"},
                  "observed": c.observed, "message": c.message} for c in failures[:4]]
        try:
            answer = stages.debug(self.client.with_context(tool=tool.name), tool_name=tool.name,
                                  tool=self._tool_view(tool), code=tool.code, failures=shown)
        except LLMError as exc:
            raise ToolStageError(f"debugger failed: {exc}") from exc
        if answer.action == "give_up":
            raise ToolStageError(f"the debugger gave up: {answer.diagnosis}")
        if answer.action == "fix_code":
            return Repair(code=answer.code, note=answer.diagnosis)
        assert answer.test is not None
        target = next((c for c in failures if c.name.split(": ", 1)[-1] == answer.test.name), failures[0])
        fixed = self.materialize(domain, tool.name, answer.test)
        fixed.expected["repaired"] = answer.diagnosis
        target.kind, target.patch, target.args, target.expected = fixed.kind, fixed.patch, fixed.args, fixed.expected
        return Repair(fixed_tests=[target.name], note=answer.diagnosis)

    # -- dependency judge --------------------------------------------------------------------

    def judge_edges(self, spec: DomainSpec, tools: list[ToolSpec], edges: list[tdg.Edge]) -> list[tdg.Edge]:
        names = {t.name for t in tools}
        candidates = [{"src": e.src, "dst": e.dst, "kinds": e.kinds, "evidence": e.evidence} for e in edges]
        answer = stages.judge_dependencies(self.client, name=spec.name,
                                           tools=[self._tool_view(t) for t in tools], candidates=candidates)
        by_pair = {(e.src, e.dst): e for e in edges}
        rejected: set[tuple[str, str]] = set()
        for verdict in answer.edges:
            pair = (verdict.src, verdict.dst)
            if verdict.src not in names or verdict.dst not in names or verdict.src == verdict.dst:
                continue
            if verdict.verdict == "reject" and pair in by_pair:
                rejected.add(pair)
            elif verdict.verdict == "confirm" and pair in by_pair:
                by_pair[pair].evidence["judge"] = verdict.reason
            elif verdict.verdict == "add" and pair not in by_pair:
                edge = tdg.Edge(verdict.src, verdict.dst, ["pre_post"],
                                {"pre_post": [{"post": f"{verdict.src} (judged)", "pre": verdict.reason}],
                                 "judge": verdict.reason})
                by_pair[pair] = edge
        return [e for pair, e in by_pair.items() if pair not in rejected]


def compare_changes(expected: dict[str, Any], diff: dict[str, Any]) -> str:
    """'' when the observed per-table diff is exactly the expected changes, else what differs."""
    want_added: dict[str, list[dict[str, Any]]] = {}
    for entry in expected.get("added", []):
        want_added.setdefault(entry["table"], []).append(entry["values"])
    want_changed: dict[str, dict[str, dict[str, Any]]] = {}
    for entry in expected.get("changed", []):
        want_changed.setdefault(entry["table"], {})[str(entry["pk"])] = entry["values"]
    want_removed: dict[str, set[str]] = {}
    for entry in expected.get("removed", []):
        want_removed.setdefault(entry["table"], set()).add(str(entry["pk"]))
    tables = set(diff) | set(want_added) | set(want_changed) | set(want_removed)
    for table in sorted(tables):
        got = diff.get(table) or {"added": {}, "removed": {}, "changed": {}}
        added = list((got.get("added") or {}).values())
        wanted = want_added.get(table, [])
        if len(added) != len(wanted):
            return f"{table}: expected {len(wanted)} row(s) added, got {len(added)} {_short(added)}"
        free = list(added)
        for values in wanted:
            match = next((row for row in free if all(statekit.same_value(row.get(k), v) for k, v in values.items())), None)
            if match is None:
                return f"{table}: no added row has {_short(values)}; added {_short(added)}"
            free.remove(match)
        removed = set((got.get("removed") or {}).keys())
        if removed != want_removed.get(table, set()):
            return f"{table}: expected removed {sorted(want_removed.get(table, set()))}, got {sorted(removed)}"
        changed = got.get("changed") or {}
        want = want_changed.get(table, {})
        if set(changed) != set(want):
            return f"{table}: expected rows {sorted(want)} changed, got {sorted(changed)} {_short(changed)}"
        for pk, values in want.items():
            new = {col: pair[1] for col, pair in changed[pk].items()}
            if set(new) != set(values):
                return f"{table} {pk}: expected columns {sorted(values)} changed, got {_short(changed[pk])}"
            wrong = {k: v for k, v in values.items() if not statekit.same_value(new.get(k), v)}
            if wrong:
                return f"{table} {pk}: expected {_short(wrong)}, got {_short({k: new.get(k) for k in wrong})}"
    return ""
