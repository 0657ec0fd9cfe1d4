"""Plain-data specifications that flow between synthesis stages (no Django)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from environments.runtime.statekit import canonical_json

JSON_TYPES = {"string": "string", "text": "string", "enum": "string", "date": "string", "datetime": "string",
              "integer": "integer", "number": "number", "boolean": "boolean", "json": "object"}


@dataclass
class ColumnSpec:
    name: str
    type: str
    nullable: bool = False
    default: Any = None
    fk: dict[str, str] | None = None  # {"table": ..., "column": ...}
    policy: str = "exact"  # exempt | exact | semantic
    values: list[str] | None = None  # enum values
    generator: str = ""  # how the procedural backend makes values
    description: str = ""

    def schema_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": self.type, "nullable": self.nullable, "policy": self.policy}
        if self.fk:
            entry["fk"] = self.fk
        if self.values:
            entry["values"] = self.values
        return entry


@dataclass
class TableSpec:
    name: str
    label: str
    pk: str
    columns: list[ColumnSpec]
    role: str = "record"
    prefix: str = "id"
    machine: dict[str, Any] | None = None
    description: str = ""

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def has(self, name: str) -> bool:
        return any(c.name == name for c in self.columns)


@dataclass
class ToolSpec:
    name: str
    description: str
    kind: str  # read | write | action | compute
    parameters: dict[str, Any]  # JSON Schema
    returns: dict[str, Any]  # JSON Schema of the output
    output_fields: list[dict[str, str]]  # [{"name", "type", "path"}] for data-flow matching
    preconditions: list[str]
    postconditions: list[str]
    raises: list[dict[str, str]]  # [{"type", "when"}]
    reads: list[str]
    writes: list[str]
    contract: dict[str, Any]
    code: str = ""
    template: str = ""

    @property
    def mutates(self) -> bool:
        return bool(self.writes)

    def raise_types(self) -> list[str]:
        return sorted({r["type"] for r in self.raises} | {"ValueError", "KeyError"})


@dataclass
class DomainSpec:
    name: str
    slug: str
    description: str
    keywords: list[str]
    sector: str
    seed: int
    backend: str
    tables: list[TableSpec]
    tools: list[ToolSpec]
    clock: str = "2026-03-02T09:00:00Z"
    id_seed: int = 0
    fixture: dict[str, Any] = field(default_factory=dict)  # a rich, valid state used by tests and witnesses
    notes: list[str] = field(default_factory=list)
    policy: str = ""  # the agent's system prompt (Markdown), written from the contracts and business rules

    @property
    def policy_version(self) -> str:
        """First 12 hex digits of the policy's SHA-256 (empty without a policy)."""
        return hashlib.sha256(self.policy.encode()).hexdigest()[:12] if self.policy else ""

    def schema(self) -> dict[str, Any]:
        return {"tables": {t.name: {"pk": t.pk, "columns": {c.name: c.schema_entry() for c in t.columns}}
                           for t in self.tables}}

    def table(self, name: str) -> TableSpec:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)

    def tool(self, name: str) -> ToolSpec:
        for t in self.tools:
            if t.name == name:
                return t
        raise KeyError(name)

    def empty_state(self) -> dict[str, Any]:
        return {t.name: {} for t in self.tables}

    def spec_hash(self) -> str:
        payload = {"tables": [asdict(t) for t in self.tables],
                   "tools": [{"name": t.name, "parameters": t.parameters, "contract": t.contract} for t in self.tools]}
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


@dataclass
class TestCase:
    tool: str
    name: str
    kind: str  # positive | negative
    patch: dict[str, Any]  # diff from the domain fixture: this case's own database instance
    args: dict[str, Any]
    expected: dict[str, Any]  # {"outcome", "error_type"?, "state_hash"?, "value"?, "diff"?}
    # filled by the runner
    outcome: str = ""  # success | anticipated_rejection | unexpected_failure
    message: str = ""
    observed: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0


@dataclass
class StageRecord:
    stage: str
    backend: str
    seconds: float
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
