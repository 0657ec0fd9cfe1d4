"""Typed outputs of the phase-1 LLM roles (pydantic): what each role must answer, checked before use.

A schema error is fed back to the model by :meth:`environments.llm.LLMClient.structured`, so the
validators below say precisely what is wrong (the model reads these messages).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
PARAM_TYPES = ("string", "integer", "number", "boolean", "date", "datetime")
COLUMN_TYPES = ("string", "text", "enum", "integer", "number", "boolean", "date", "datetime", "json")
TEMPLATES = ("search", "get", "list_for_parent", "create", "update", "transition", "delete", "book", "cancel_booking",
             "pay", "restock", "withdraw", "aggregate", "count_by_status", "status_rate", "other")
TABLE_ROLES = ("person", "provider", "place", "resource", "booking", "invoice", "payment", "item", "record")


def _snake(value: str, what: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError(f"{what} {value!r} must be snake_case: lowercase letters, digits and _")
    return value


# -- domain proposer ------------------------------------------------------------------------------


class DomainProposal(BaseModel):
    name: str = Field(min_length=3, max_length=80)
    slug: str = Field(description="lowercase words joined by hyphens, e.g. pet-care-clinic")
    description: str = Field(min_length=20, max_length=600)
    keywords: list[str] = Field(min_length=2, max_length=8)
    sector: str = Field(description="snake_case sector, e.g. pet_care")

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", value):
            raise ValueError("slug must be lowercase words joined by hyphens")
        return value

    @field_validator("sector")
    @classmethod
    def _sector(cls, value: str) -> str:
        return _snake(value, "sector")


class DomainProposals(BaseModel):
    domains: list[DomainProposal] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> DomainProposals:
        slugs = [d.slug for d in self.domains]
        if len(set(slugs)) != len(slugs):
            raise ValueError("two proposed domains share a slug; every domain must be different")
        return self


# -- tool designer --------------------------------------------------------------------------------


class ParamDesign(BaseModel):
    name: str
    type: Literal["string", "integer", "number", "boolean", "date", "datetime"]
    description: str = Field(min_length=3)
    required: bool = True
    enum: list[str] | None = None
    minimum: float | None = None
    maximum: float | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _snake(value, "parameter name")


class OutputField(BaseModel):
    name: str
    type: Literal["string", "integer", "number", "boolean", "object", "array"]
    path: str = Field(description="where the field is in the output, e.g. appointment_id or items.0.slot_id")


class RaiseDesign(BaseModel):
    type: str = Field(description="the exception class, e.g. KeyError, ValueError, or a declared name")
    when: str = Field(min_length=3)


class ToolDesign(BaseModel):
    name: str
    description: str = Field(min_length=20)
    kind: Literal["read", "write", "action", "compute"]
    template: Literal["search", "get", "list_for_parent", "create", "update", "transition", "delete", "book",
                      "cancel_booking", "pay", "restock", "withdraw", "aggregate", "count_by_status", "status_rate",
                      "other"]
    parameters: list[ParamDesign]
    output_description: str = Field(min_length=3)
    output_fields: list[OutputField] = Field(min_length=1)
    preconditions: list[str]
    postconditions: list[str]
    raises: list[RaiseDesign]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _snake(value, "tool name")


class ToolDesigns(BaseModel):
    tools: list[ToolDesign] = Field(min_length=2)
    business_rules: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _distinct(self) -> ToolDesigns:
        names = [t.name for t in self.tools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tool names must be unique; repeated: {', '.join(dupes)}")
        return self


# -- database designer ----------------------------------------------------------------------------


class ColumnDesign(BaseModel):
    name: str
    type: Literal["string", "text", "enum", "integer", "number", "boolean", "date", "datetime", "json"]
    nullable: bool = False
    default: Any = None
    fk_table: str | None = Field(default=None, description="the table whose primary key this column holds")
    policy: Literal["exempt", "exact", "semantic"]
    values: list[str] | None = Field(default=None, description="the allowed values of an enum column")
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _snake(value, "column name")

    @model_validator(mode="after")
    def _enum(self) -> ColumnDesign:
        if self.type == "enum" and not self.values:
            raise ValueError(f"enum column {self.name} needs its values")
        return self


class MachineDesign(BaseModel):
    name: str = Field(description="account | resource | booking | order | invoice | ticket ...")
    states: list[str] = Field(min_length=2)
    initial: str

    @model_validator(mode="after")
    def _initial(self) -> MachineDesign:
        if self.initial not in self.states:
            raise ValueError(f"initial state {self.initial!r} is not one of the states")
        return self


class TableDesign(BaseModel):
    name: str
    label: str = Field(description="one row in words, singular, e.g. care slot")
    pk: str
    prefix: str = Field(description="prefix of generated ids, 2-4 lowercase letters")
    role: Literal["person", "provider", "place", "resource", "booking", "invoice", "payment", "item", "record"]
    description: str = ""
    machine: MachineDesign | None = Field(default=None, description="the status life cycle, when the table has status")
    columns: list[ColumnDesign] = Field(min_length=2)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _snake(value, "table name")

    @model_validator(mode="after")
    def _keys(self) -> TableDesign:
        names = [c.name for c in self.columns]
        if self.pk not in names:
            raise ValueError(f"table {self.name}: the primary key {self.pk} is not one of its columns")
        if self.machine and "status" not in names:
            raise ValueError(f"table {self.name} has a life cycle but no status column")
        return self


class Subject(BaseModel):
    """What a tool is about, for task builders (same shape as the procedural backend's)."""

    template: str
    table: str
    parent: str | None = None
    filters: dict[str, dict[str, str]] = Field(default_factory=dict)
    sets: list[str] = Field(default_factory=list)
    keys: dict[str, str] = Field(default_factory=dict)
    transition: dict[str, Any] | None = None


class ToolBinding(BaseModel):
    tool: str
    reads: list[str]
    writes: list[str]
    subject: Subject
    steps: list[dict[str, Any]] = Field(description="the tool's pre/post-conditions as contract steps")


class DatabaseDesign(BaseModel):
    tables: list[TableDesign] = Field(min_length=1)
    tools: list[ToolBinding]
    rows: dict[str, list[dict[str, Any]]] = Field(description="a small consistent sample state: table -> rows")

    @model_validator(mode="after")
    def _consistent(self) -> DatabaseDesign:
        tables = {t.name: t for t in self.tables}
        problems: list[str] = []
        for t in self.tables:
            for c in t.columns:
                if c.fk_table and c.fk_table not in tables:
                    problems.append(f"{t.name}.{c.name} points at unknown table {c.fk_table}")
        for b in self.tools:
            for name in [*b.reads, *b.writes, b.subject.table]:
                if name not in tables:
                    problems.append(f"tool {b.tool} uses unknown table {name}")
        for name, rows in self.rows.items():
            table = tables.get(name)
            if table is None:
                problems.append(f"rows given for unknown table {name}")
                continue
            for row in rows:
                if table.pk not in row:
                    problems.append(f"a {name} row has no {table.pk}")
                for c in table.columns:
                    if c.fk_table and row.get(c.name) is not None:
                        target = tables[c.fk_table]
                        if not any(r.get(target.pk) == row[c.name] for r in self.rows.get(c.fk_table, [])):
                            problems.append(f"{name} row {row.get(table.pk)}: {c.name}={row[c.name]} has no "
                                            f"{c.fk_table} row")
        if problems:
            raise ValueError("; ".join(problems[:10]))
        return self


# -- policy, code, tests, debugger, dependency judge -----------------------------------------


class PolicyDraft(BaseModel):
    policy: str = Field(min_length=80, description="the agent's policy in Markdown")


class ToolCode(BaseModel):
    code: str = Field(min_length=20, description="Python source defining def <tool_name>(db, ctx, **params)")


class ExpectedChanges(BaseModel):
    added: list[dict[str, Any]] = Field(default_factory=list, description='[{"table": t, "values": {...}}]')
    changed: list[dict[str, Any]] = Field(default_factory=list, description='[{"table": t, "pk": id, "values": {...}}]')
    removed: list[dict[str, Any]] = Field(default_factory=list, description='[{"table": t, "pk": id}]')

    @model_validator(mode="after")
    def _shape(self) -> ExpectedChanges:
        for entry in self.added:
            if not {"table", "values"} <= set(entry):
                raise ValueError("each added entry needs table and values")
        for entry in self.changed:
            if not {"table", "pk", "values"} <= set(entry):
                raise ValueError("each changed entry needs table, pk and values")
        for entry in self.removed:
            if not {"table", "pk"} <= set(entry):
                raise ValueError("each removed entry needs table and pk")
        return self


class Expectation(BaseModel):
    outcome: Literal["success", "error"]
    error_type: str | None = None
    changes: ExpectedChanges = Field(default_factory=ExpectedChanges)
    returns: dict[str, Any] | None = Field(default=None, description="fields the output must contain")

    @model_validator(mode="after")
    def _error(self) -> Expectation:
        if self.outcome == "error" and not self.error_type:
            raise ValueError("an expected error needs its error_type")
        return self


class TestDesign(BaseModel):
    name: str = Field(min_length=3)
    kind: Literal["positive", "negative"]
    rows: dict[str, list[dict[str, Any]]] = Field(default_factory=dict,
                                                   description="rows added to (or replacing) the sample state")
    remove: list[dict[str, str]] = Field(default_factory=list, description='[{"table": t, "pk": id}]')
    args: dict[str, Any]
    expect: Expectation


class TestDesigns(BaseModel):
    cases: list[TestDesign] = Field(min_length=2)

    @model_validator(mode="after")
    def _both(self) -> TestDesigns:
        kinds = {c.kind for c in self.cases}
        if kinds != {"positive", "negative"}:
            raise ValueError("write at least one positive and one negative case")
        return self


class DebugAnswer(BaseModel):
    action: Literal["fix_code", "fix_test", "give_up"]
    diagnosis: str = Field(min_length=5)
    code: str | None = None
    test: TestDesign | None = Field(default=None, description="the corrected failing case (fix_test)")

    @model_validator(mode="after")
    def _payload(self) -> DebugAnswer:
        if self.action == "fix_code" and not self.code:
            raise ValueError("fix_code needs the full corrected code")
        if self.action == "fix_test" and self.test is None:
            raise ValueError("fix_test needs the corrected test case")
        return self


class EdgeVerdict(BaseModel):
    src: str
    dst: str
    verdict: Literal["confirm", "reject", "add"]
    reason: str = Field(min_length=3)


class DependencyJudgement(BaseModel):
    edges: list[EdgeVerdict]
