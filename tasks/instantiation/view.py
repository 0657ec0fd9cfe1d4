"""What task instantiation needs to know about a domain, as plain data (no Django)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx


@dataclass
class ToolView:
    name: str
    template: str
    kind: str
    parameters: dict[str, Any]
    output_fields: list[dict[str, str]]
    contract: dict[str, Any]
    reads: list[str]
    writes: list[str]
    code: str
    raises: list[str]
    positive: tuple[dict[str, Any], dict[str, Any]] | None = None  # (patch over the fixture, args)
    description: str = ""

    @property
    def mutates(self) -> bool:
        return bool(self.writes)

    @property
    def required(self) -> list[str]:
        return list(self.parameters.get("required", []))

    @property
    def subject(self) -> dict[str, Any]:
        """Machine-readable purpose of the tool (template, main table, parent, filters, keys)."""
        return dict(self.contract.get("subject") or {})

    @property
    def table(self) -> str | None:
        return self.subject.get("table")

    def what(self) -> str:
        """The entity the tool is about (from its first load), e.g. 'visit slot'."""
        for step in self.contract["steps"]:
            if step["op"] == "load":
                return step["what"]
        return self.name.split("_", 1)[-1].replace("_", " ")


@dataclass
class TableView:
    name: str
    label: str
    pk: str
    role: str
    columns: dict[str, dict[str, Any]]  # name -> {type, nullable, fk, values, policy}
    machine: dict[str, Any] | None = None

    def fks(self) -> dict[str, str]:
        """Foreign-key column -> the table it points at."""
        return {c: spec["fk"]["table"] for c, spec in self.columns.items() if spec.get("fk")}

    def columns_of_type(self, *types: str) -> list[str]:
        return [c for c, spec in self.columns.items() if spec.get("type") in types]

    @property
    def states(self) -> list[str]:
        return list((self.machine or {}).get("states", []))


@dataclass
class EdgeView:
    src: str
    dst: str
    kinds: list[str]
    evidence: dict[str, Any]
    witnessed: bool


@dataclass
class DomainView:
    slug: str
    name: str
    sector: str
    schema: dict[str, Any]
    fixture: dict[str, Any]
    clock: str
    id_seed: int
    tools: dict[str, ToolView]
    edges: list[EdgeView]
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {label, pk, role, machine, columns}
    policy: str = ""
    policy_version: str = ""
    description: str = ""

    def graph(self) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_nodes_from(self.tools)
        for e in self.edges:
            g.add_edge(e.src, e.dst, kinds=e.kinds, evidence=e.evidence, witnessed=e.witnessed)
        return g

    def data_flow(self, src: str, dst: str) -> list[dict[str, str]]:
        for e in self.edges:
            if e.src == src and e.dst == dst:
                return list(e.evidence.get("data_flow", []))
        return []

    def bundle_tools(self) -> dict[str, dict[str, Any]]:
        return {t.name: {"code": t.code, "raises": t.raises} for t in self.tools.values()}

    def table(self, name: str) -> TableView:
        info = self.tables[name]
        columns = {c: dict(spec) for c, spec in self.schema["tables"][name]["columns"].items()}
        return TableView(name=name, label=info.get("label", name), pk=info["pk"], role=info.get("role", "record"),
                         columns=columns, machine=info.get("machine"))

    def tools_for(self, template: str, table: str | None = None, parent: str | None = None) -> list[ToolView]:
        """Tools of a template about a table (and, for list tools, a parent), by their subject."""
        found = []
        for tool in self.tools.values():
            subject = tool.subject
            if (subject.get("template") or tool.template) != template:
                continue
            if table is not None and subject.get("table") != table:
                continue
            if parent is not None and subject.get("parent") != parent:
                continue
            found.append(tool)
        return sorted(found, key=lambda t: t.name)

    def tool_for(self, template: str, table: str | None = None, parent: str | None = None) -> ToolView | None:
        found = self.tools_for(template, table, parent)
        return found[0] if found else None
